/* hint.c - edit distance for "did you mean" hints. */
#include "hint.h"

size_t hint_distance(const char *a, size_t la, const char *b, size_t lb,
                     size_t max)
{
    size_t rows[3][HINT_MAX_WORD + 1];
    size_t *pp = rows[0], *p = rows[1], *c = rows[2];

    if ((la > lb ? la - lb : lb - la) > max || la > HINT_MAX_WORD ||
        lb > HINT_MAX_WORD)
        return max + 1;
    for (size_t j = 0; j <= lb; j++)
        p[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t best = c[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t v = p[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (p[j] + 1 < v)
                v = p[j] + 1;
            if (c[j - 1] + 1 < v)
                v = c[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            c[j] = v;
            if (v < best)
                best = v;
        }
        if (best > max)
            return max + 1;
        size_t *t = pp;
        pp = p;
        p = c;
        c = t;
    }
    return p[lb];
}
