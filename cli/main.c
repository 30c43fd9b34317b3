/* main.c - the weft command-line tool: argument dispatch only. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"

int main(int argc, char **argv)
{
    weft_alloc_init();
    if (argc < 2) {
        fprintf(stderr, "usage: weft COMMAND [ARGS]\n");
        return 2;
    }
    fprintf(stderr, "weft: unknown command '%s'\n", argv[1]);
    return 2;
}
