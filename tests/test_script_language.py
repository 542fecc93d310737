"""bpftrace's language, parsed and checked: located errors in bpftrace's
words (line, column, the source line and a caret), precedence, macros,
positional parameters, and types as bpftrace names them. Nothing here loads
BPF; the checker reads this kernel's BTF and tracefs."""

from __future__ import annotations

from pathlib import Path

import pytest

from noisy_neighbor.errors import ScriptError
from noisy_neighbor.script import ast
from noisy_neighbor.script.check import check
from noisy_neighbor.script.diagnostics import Source
from noisy_neighbor.script.kernel import Kernel
from noisy_neighbor.script.parser import parse

TOOLS = sorted(Path("/usr/sbin").glob("*.bt"))


def checked(program: str, *params: str):
    tree = parse(program)
    return check(tree, Source(program), Kernel(tree.definitions), list(params))


def error_of(program: str, *params: str) -> str:
    with pytest.raises(ScriptError) as caught:
        checked(program, *params)
    return str(caught.value)


def test_a_syntax_error_names_the_line_and_column_with_a_caret() -> None:
    # bpftrace 0.17 starts a location only after whitespace: `;` right
    # after `+` is located from the `+`
    assert error_of("BEGIN {\n  @x = 1 +;\n}").splitlines() == [
        "stdin:2:10-12: ERROR: syntax error, unexpected ;",
        "  @x = 1 +;",
        "         ~~",
    ]


@pytest.mark.parametrize(
    ("program", "expected"),
    [
        # bpftrace 0.17's own output for each (its lexer's `loc.step()` runs
        # only at whitespace, so a token glued to the one before it is located
        # from that one)
        ("BEGIN{foo();}", ["stdin:1:1-10: ERROR: Unknown function: foo", "BEGIN{foo();}", "~" * 9]),
        (
            'BEGIN { printf("%d\\n",pdi); }',
            [
                "stdin:1:9-26: ERROR: Unknown identifier: 'pdi'",
                'BEGIN { printf("%d\\n",pdi); }',
                " " * 8 + "~" * 17,
            ],
        ),
        (
            'BEGIN { $x=(1+"a"); }',
            [
                "stdin:1:9-18: ERROR: Type mismatch for '+': comparing 'int64' with 'string[2]'",
                'BEGIN { $x=(1+"a"); }',
                " " * 8 + "~" * 9,
            ],
        ),
        (
            "BEGIN { if (1) { exit() } else { exit() }",
            [
                "stdin:1:41-42: ERROR: syntax error, unexpected end of file, expecting }",
                "BEGIN { if (1) { exit() } else { exit() }",
                " " * 40 + "~",
            ],
        ),
        # after trailing whitespace the end of the file is an empty location
        (
            "BEGIN { exit(); ",
            [
                "stdin:1:17-17: ERROR: syntax error, unexpected end of file, expecting }",
                "BEGIN { exit(); ",
                " " * 16,
            ],
        ),
        # a tab is printed as four spaces, in the line and under it
        (
            'BEGIN {\n\t@x = 1;\n\t@x = "a";\n}',
            [
                "stdin:3:2-4: ERROR: Type mismatch for @x: trying to assign value of type "
                "'string[2]' when map already contains a value of type 'int64",
                '    @x = "a";',
                "    ~~",
            ],
        ),
        # a node over several lines is named by its lines only
        (
            'BEGIN { @x = (1 +\n "a"); }',
            ["stdin:1-2: ERROR: Type mismatch for '+': comparing 'int64' with 'string[2]'"],
        ),
    ],
)
def test_error_locations_are_bpftraces(program: str, expected: list[str]) -> None:
    assert error_of(program).splitlines() == expected


def test_an_unknown_function_is_bpftraces_error_at_its_name() -> None:
    assert error_of("BEGIN { foo(); }").splitlines() == [
        "stdin:1:9-12: ERROR: Unknown function: foo",
        "BEGIN { foo(); }",
        "        ~~~",
    ]


@pytest.mark.parametrize(
    ("program", "message"),
    [
        (
            'BEGIN { $x = "a"; $x = 1; }',
            "Type mismatch for $x: trying to assign value of type 'int64' when variable "
            "already contains a value of type 'string[2]'",
        ),
        (
            "BEGIN { @a = count(); @a = sum(3); }",
            "Type mismatch for @a: trying to assign value of type 'sum' when map already "
            "contains a value of type 'count",
        ),
        (
            'BEGIN { printf("%d\\n", "str"); }',
            "printf: %d specifier expects a value of type integer",
        ),
        ('BEGIN { printf("%d %d\\n", 1); }', "printf: Not enough arguments for format string"),
        ("BEGIN { $x = $y; }", "Undefined or undeclared variable: $y"),
        ("BEGIN { @x = retval; }", "The retval builtin can only be used with"),
        ("tracepoint:sched:nosuch { }", "tracepoint not found: sched:nosuch"),
        ("tracepoint:sched:sched_switch { @ = args->nosuch; }", "Can't find a field nosuch"),
        ("BEGIN { @ = curtask->nosuch; }", "does not contain a field named 'nosuch'"),
        ("BEGIN { unroll(0) { } }", "unroll minimum value is 1"),
        ('BEGIN { system("true"); }', "system() is an unsafe function being used in safe mode"),
        ("BEGIN { @x[1] = 1; @x[1, 2] = 1; }", "Argument mismatch for @x"),
        ("BEGIN { $x = count(); }", "count() should be assigned to a map"),
        ("nosuch:probe { }", "Invalid probe type: nosuch"),
        ("BEGIN { break; }", "break statement is not allowed outside a loop"),
        ('BEGIN { printf("%d", @never_written); }', "Undefined map: @never_written"),
        ("BEGIN { @[1] = 1; print(@[1]); }", "should not be indexed by a key"),
    ],
)
def test_bad_scripts_get_bpftraces_messages(program: str, message: str) -> None:
    assert message in error_of(program)


def test_a_word_given_for_a_number_must_go_through_str() -> None:
    assert "Try using str($1)" in error_of("BEGIN { @ = $1; }", "hello")
    info = checked("BEGIN { @s = str($1); @n = $2; @c = $#; }", "hello", "0x10")
    assert info.maps["@s"].value is not None and info.maps["@s"].value.name == "string[6]"


def test_types_are_named_as_bpftrace_names_them() -> None:
    info = checked(
        "tracepoint:sched:sched_switch { @a = args->prev_pid; @b = args->prev_comm; "
        '@c = (uint32)1 + 1; @d = curtask; @e = (1, "two"); @f = hist(1); @g = comm; }'
    )
    names = {name: m.value.name for name, m in info.maps.items() if m.value is not None}
    assert names["@b"] == "string[16]"
    assert names["@c"] == "unsigned int64"
    assert names["@d"] == "struct task_struct *"
    assert names["@e"] == "(int64,string[4])"
    assert names["@f"] == "hist"
    assert names["@g"] == "string[16]"


def test_a_variable_keeps_its_integers_size_and_a_map_holds_64_bits() -> None:
    info = checked("BEGIN { $x = (uint8)255; $x++; @m = (uint8)1; }")
    assert info.variables[0]["$x"].name == "unsigned int8"
    assert info.maps["@m"].value is not None and info.maps["@m"].value.name == "unsigned int64"


def test_operators_bind_as_in_c() -> None:
    (probe,) = parse("BEGIN { $x = 1 + 2 * 3 << 1 == 14 && !0 ? -1 : 2; }").probes
    (stmt,) = probe.body.stmts
    assert isinstance(stmt, ast.AssignVar)
    ternary = stmt.expr
    assert isinstance(ternary, ast.Ternary)
    logical = ternary.cond
    assert isinstance(logical, ast.Binop) and logical.op == "&&"
    equality = logical.left
    assert isinstance(equality, ast.Binop) and equality.op == "=="
    shift = equality.left
    assert isinstance(shift, ast.Binop) and shift.op == "<<"
    add = shift.left
    assert isinstance(add, ast.Binop) and add.op == "+"
    assert isinstance(add.right, ast.Binop) and add.right.op == "*"


def test_a_predicate_may_divide() -> None:
    (probe,) = parse("BEGIN /10 / 2 == 5/ { exit(); }").probes
    assert isinstance(probe.predicate, ast.Binop) and probe.predicate.op == "=="


def test_macros_headers_and_kernel_constants_are_expanded() -> None:
    info = checked("#define LIMIT 5\nBEGIN { @x = LIMIT; @y = TASK_RUNNING; @z = AF_INET6; }")
    assert set(info.maps) == {"@x", "@y", "@z"}
    assert "file not found" in error_of("#include <no/such/header.h>\nBEGIN { }")


def test_preprocessor_conditionals_see_btf_as_bpftrace_does() -> None:
    program = (
        "#ifndef BPFTRACE_HAVE_BTF\nthis is not bpftrace\n#else\n#define X 1\n#endif\n"
        "/* # not a directive */\nBEGIN { @ = X; }"
    )
    assert "@" in checked(program).maps


def test_one_attach_point_per_program_and_wildcards_expand() -> None:
    info = checked("tracepoint:syscalls:sys_enter_open*, BEGIN { @[probe] = count(); }")
    names = {c.spec.name for c in info.contexts}
    assert "BEGIN" in names and "tracepoint:syscalls:sys_enter_openat" in names
    assert len(names) == len(info.contexts) >= 3


def test_positional_parameters_fill_attach_points() -> None:
    info = checked("interval:ms:$1 { exit(); }", "250")
    (context,) = info.contexts
    assert context.perf_event == {
        "type": "software",
        "event": "cpu-clock",
        "period": 250_000_000,
        "cpus": "first",
    }


def test_kprobes_run_as_fentry_where_the_kernel_has_none() -> None:
    kernel = Kernel([])
    info = checked(
        "kprobe:vfs_read { @[comm] = count(); } kretprobe:vfs_read { @r = hist(retval); }"
    )
    sections = sorted(c.section for c in info.contexts)
    if kernel.has_kprobes:
        assert sections == ["kprobe/vfs_read", "kretprobe/vfs_read"]
    else:
        assert sections == ["fentry/vfs_read", "fexit/vfs_read"]
        assert any("this kernel has no kprobes" in note for note in info.notes)


@pytest.mark.skipif(not TOOLS, reason="Debian's bpftrace tools are not installed")
@pytest.mark.parametrize("tool", TOOLS, ids=lambda p: p.stem)
def test_every_bundled_tool_parses(tool: Path) -> None:
    program = parse(tool.read_text(), str(tool))
    assert program.probes
