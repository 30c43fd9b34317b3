# Embeds the Lua scripts into a C file: each script named in SCRIPTS (in
# enum script_id order) becomes a byte array. A script in PRELUDED is a
# transition body: it is wrapped as `local function main() ... end`
# between lib.lua and epilogue.lua, which applies it to each transition
# of a batch. Run as: cmake -DOUT=... -DDIR=... -P embed.cmake
set(SCRIPTS create_run dispatch start finish activate cancel fire_delayed
    reject trim unindex park resolve retry dead_letter dlq_move rollback)
set(PRELUDED create_run dispatch start finish activate cancel reject park
    resolve retry rollback)
file(READ ${DIR}/lib.lua prelude)
file(READ ${DIR}/epilogue.lua epilogue)
set(body "/* Generated from common/lua by embed.cmake: do not edit. */\n#include <stddef.h>\n")
set(table "const char *const scripts_src[] = {")
set(lens "const size_t scripts_len[] = {")
foreach(name ${SCRIPTS})
  file(READ ${DIR}/${name}.lua text)
  list(FIND PRELUDED ${name} idx)
  if(NOT idx EQUAL -1)
    set(text "${prelude}\nlocal function main()\n${text}\nend\n${epilogue}")
  endif()
  string(LENGTH "${text}" len)
  file(WRITE ${OUT}.tmp "${text}")
  file(READ ${OUT}.tmp hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND body "static const char src_${name}[] = {${bytes}0x00};\n")
  string(APPEND table "src_${name}, ")
  string(APPEND lens "${len}, ")
endforeach()
file(REMOVE ${OUT}.tmp)
file(WRITE ${OUT} "${body}${table}};\n${lens}};\n")
