"""Instruction mix of the NEON GEMM micro-kernel's inner loops.

Speed cannot be measured under emulation, so this counts what one k-step of
the 8 x 12 micro-kernel executes, from the disassembly of a cross build:

    cmake -S . -B build-arm -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
          -DCNNC_BUILD_PYTHON=OFF && cmake --build build-arm
    python benchmarks/neon_kernel_mix.py build-arm

The loop with 3 loads per step is the packed-panel path (the GEMM's main
loop); the others read rows of A in place, with one broadcast per row.
"""
import collections
import pathlib
import re
import subprocess
import sys

LINE = re.compile(r"\s*([0-9a-f]+):\s+(\S+)\s*(.*)")
TARGET = re.compile(r"\b([0-9a-f]+) <")


def instructions(obj):
    text = subprocess.run(["aarch64-linux-gnu-objdump", "-d", "--no-show-raw-insn", str(obj)],
                          check=True, capture_output=True, text=True).stdout
    body = text[text.index("<ukernel>:"):]
    body = body[:body.find("\n\n")] if "\n\n" in body else body
    return [(int(m[1], 16), m[2], m[3]) for m in map(LINE.match, body.splitlines()) if m]


def inner_loops(insns):
    """Innermost backward-branch loops that contain FMAs."""
    loops = []
    for addr, op, arg in insns:
        target = TARGET.search(arg)
        if op.startswith("b") and target and int(target[1], 16) < addr:
            body = [i for i in insns if int(target[1], 16) <= i[0] <= addr]
            if any(i[1] == "fmla" for i in body):
                loops.append(body)
    return [b for b in loops if not any(o is not b and set(map(id, o)) < set(map(id, b)) for o in loops)]


def main():
    build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build-arm")
    obj = next(build.rglob("gemm_neon.c.o"))
    print(f"{obj}\n")
    print("| loop | instructions | fmla | loads | other | instructions per FMA |")
    print("|---|---|---|---|---|---|")
    for n, body in enumerate(inner_loops(instructions(obj))):
        ops = collections.Counter(i[1] for i in body)
        loads = sum(v for k, v in ops.items() if k.startswith("ld"))
        fmla = ops["fmla"]
        print(f"| {n} | {len(body)} | {fmla} | {loads} | {len(body) - fmla - loads} "
              f"| {len(body) / fmla:.3f} |")


if __name__ == "__main__":
    main()
