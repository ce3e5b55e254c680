# gen_ops.awk: the emulator's wrapper of every op of kernels/op_table.h
# (tests/cuda_emu/emu.h shows what one does), written from the struct itself
# so a new table entry needs nothing edited here. The Makefile runs
#
#   awk -f tests/cuda_emu/gen_ops.awk kernels/op_table.h > $(BUILD)/gen/emu_ops.c
#
# It reads the entries between "/* ops */" and the struct's "};", one a
# line: `RET (*NAME)(Ctx *, ARG, ...);`. A line there it cannot read stops it.

BEGIN {
    print "/* generated from kernels/op_table.h by tests/cuda_emu/gen_ops.awk (make emu-check) */"
    print "#include \"tests/cuda_emu/emu.h\""
    print ""
}
/\/\* ops \*\// { in_ops = 1; next }
in_ops && /^};/ { in_ops = 0 }
!in_ops || !/\(\*/ { next }
{
    s = $0
    sub(/^[ \t]+/, "", s)
    if (s !~ /^[A-Za-z_][A-Za-z0-9_]* \(\*[a-z0-9_]+\)\(Ctx \*[^)]*\);/) {
        printf "%s:%d: gen_ops.awk cannot read this op table entry: %s\n", FILENAME, FNR, $0 > "/dev/stderr"
        failed = 1
        exit 1
    }
    p = index(s, " (*")
    ret = substr(s, 1, p - 1)
    rest = substr(s, p + 3)
    q = index(rest, ")(")
    name = substr(rest, 1, q - 1)
    args = substr(rest, q + 2)
    args = substr(args, 1, index(args, ");") - 1)
    n = split(args, arg, /, */)
    names[++nops] = name

    params = ""
    call = "emu_inner(a0)"
    for (i = 1; i <= n; i++) {
        params = params (i > 1 ? ", " : "") arg[i] (arg[i] ~ /\*$/ ? "" : " ") "a" (i - 1)
        if (i > 1) call = call ", a" (i - 1)
    }
    printf "static %s w_%s(%s)\n{\n", ret, name, params
    printf "    EmuCall c;\n    emu_begin(&c, a0, \"%s\");\n", name
    printf "    Tensor args[%d] = {{0}};\n", n
    for (i = 2; i <= n; i++)
        if (arg[i] == "Tensor") printf "    args[%d] = a%d;\n", i - 1, i - 1
    printf "    emu_check(&c, args, %d);\n", n
    for (i = 2; i <= n; i++)
        if (arg[i] == "Tensor") printf "    a%d = emu_tensor(&c, a%d, %d, args);\n", i - 1, i - 1, i - 1
    if (ret == "void") {
        printf "    cpu_op_table.%s(%s);\n    emu_end(&c);\n}\n\n", name, call
    } else {
        printf "    %s r = cpu_op_table.%s(%s);\n    emu_end(&c);\n    return r;\n}\n\n", ret, name, call
    }
}
END {
    if (failed) exit 1
    if (nops == 0) {
        print "gen_ops.awk: no op table entries found (no \"/* ops */\" section?)" > "/dev/stderr"
        exit 1
    }
    print "void emu_fill_table(OpTable *t)\n{"
    for (i = 1; i <= nops; i++) printf "    t->%s = cpu_op_table.%s ? w_%s : NULL;\n", names[i], names[i], names[i]
    print "}"
}
