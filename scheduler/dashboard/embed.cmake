# Embeds the dashboard page into a C file as a byte array, so the
# scheduler serves it without files at run time and without a build
# toolchain for the page itself. Run as:
#   cmake -DIN=index.html -DOUT=dashboard_gen.c -P embed.cmake
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT}
  "/* Generated from scheduler/dashboard/index.html by embed.cmake: do not edit. */\n"
  "#include <stddef.h>\n"
  "extern const char dashboard_html[];\n"
  "extern const size_t dashboard_html_len;\n"
  "const char dashboard_html[] = {${bytes}0x00};\n"
  "const size_t dashboard_html_len = ${len};\n")
