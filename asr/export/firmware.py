"""`asr firmware EXPORT_DIR --target host|m4|m4-cmsis|m55`: the exported MCU bundle (EXPORT_DIR/mcu/) compiled
with TensorFlow Lite Micro into a host program or a Cortex-M image for QEMU's MPS2/MPS3 boards.

TFLite Micro comes from the offline kit (`$TFLM_KIT`, else ../shared/third_party/tflm next to the repository;
its setup.sh lays out the tree). Why not TFLM's own Makefile: it compiles all ~120 kernels (5-10 minutes per
target on 2 cores), needs Pillow at parse time, and its cortex_m_qemu target forces `-mfloat-abi=soft` (no FPU
for the float front end on the M4F, no Helium on the M55). Here only the kernels that the bundle's op_resolver.h
registers are compiled, with the flags of TFLM's Makefile, and each object is cached under
~/.cache/tied-asr/tflm/ (keyed by kit commit, target and flags), so a second build only compiles the bundle.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from asr.errors import InputError
from asr.runtime.bundle import MCU_DIR

SUPPORT = resources.files("asr.export") / "firmware_support"
KIT_ENV = "TFLM_KIT"
BUNDLE_SOURCES = ("main.cc", "model_check.cc", "model_data.cc", "frontend.c", "frontend_tables.c", "detector.c")
SIZE_OPTIMIZED = {"model_check.cc"}  # runs once at start-up
# Never needed by an application: TFLM's test scaffolding.
CORE_EXCLUDE = {"fake_micro_context.cc", "mock_micro_graph.cc", "test_helpers.cc", "test_helper_custom_ops.cc"}
COMMON_FLAGS = [
    "-fno-unwind-tables",
    "-fno-asynchronous-unwind-tables",
    "-ffunction-sections",
    "-fdata-sections",
    "-DTF_LITE_STATIC_MEMORY",
    "-DTF_LITE_DISABLE_X86_NEON",
]
CXX_FLAGS = ["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"]
# TFLite Micro's release build (its Makefile's BUILD_TYPE=release), which is what a product flashes: no error strings
# (36 KB of flash on the M4F) and no per-op profiling. `debug=True` keeps both, for diagnosis and bench.firmware's
# per-op table.
RELEASE_DEFINES = ("-DNDEBUG", "-DTF_LITE_STRIP_ERROR_STRINGS")


@dataclass(frozen=True)
class Target:
    name: str
    prefix: str = ""  # toolchain prefix
    arch_flags: tuple[str, ...] = ()
    cmsis_nn: bool = False
    device: str = ""  # Cortex_DFP device (startup code and linker script)
    machine: str = ""  # qemu-system-arm board
    cpu: str = ""
    rom: int = 0  # the board's code and data memory (bytes) given to the linker script
    ram: int = 0
    defines: tuple[str, ...] = field(default=())

    @property
    def embedded(self) -> bool:
        return bool(self.prefix)


ARM = ("-mthumb", "-mfloat-abi=hard", "-funsigned-char", "-mlittle-endian", "-fomit-frame-pointer")
TARGETS = {
    "host": Target("host", defines=("-DTF_LITE_USE_CTIME",)),
    "m4": Target(
        "m4", "arm-none-eabi-", ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", *ARM), False, "ARMCM4", "mps2-an386",
        "cortex-m4", 0x400000, 0x400000,
    ),
    "m4-cmsis": Target(
        "m4-cmsis", "arm-none-eabi-", ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", *ARM), True, "ARMCM4", "mps2-an386",
        "cortex-m4", 0x400000, 0x400000,
    ),
    # -mcpu=cortex-m55 with the hard-float ABI enables Helium (MVE), which CMSIS-NN uses.
    "m55": Target(
        "m55", "arm-none-eabi-", ("-mcpu=cortex-m55", *ARM), True, "ARMCM55", "mps3-an547",
        "cortex-m55", 0x80000, 0x80000,
    ),
}  # fmt: skip


class FirmwareError(InputError):
    """The kit, a compiler or a build step is missing or failed; the message says what to install or fix."""


def find_kit(kit: str | Path | None = None) -> Path:
    """The TFLM kit folder: `kit`, else $TFLM_KIT, else ../shared/third_party/tflm beside the repository."""
    default = Path(__file__).resolve().parents[3] / "shared" / "third_party" / "tflm"
    candidates = [Path(kit)] if kit else ([Path(os.environ[KIT_ENV])] if os.environ.get(KIT_ENV) else [default])
    for path in candidates:
        if (path / "setup.sh").is_file() and (path / "tflite-micro").is_dir():
            return path.resolve()
    raise FirmwareError(
        f"no TFLite Micro kit at {candidates[0]} (set ${KIT_ENV}, or place the kit at {default}; it needs "
        "setup.sh and tflite-micro/). Without the kit, clone tflite-micro and run its Makefile as in "
        "deploy/mcu/README.md."
    )


def kit_commit(kit: Path) -> str:
    for line in (kit / "MANIFEST.tsv").read_text().splitlines():
        cols = line.split("\t")
        if cols[0] == "tflite-micro":
            return cols[4][:12]
    raise FirmwareError(f"{kit / 'MANIFEST.tsv'}: no tflite-micro row")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tied-asr" / "tflm"


def tflm_tree(kit: Path) -> Path:
    """A buildable TFLM tree for `kit` in the cache (setup.sh is offline and idempotent: a second call is quick)."""
    tree = cache_root() / kit_commit(kit) / "tree"
    tree.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["bash", str(kit / "setup.sh"), str(kit), str(tree)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise FirmwareError(f"{kit / 'setup.sh'} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return tree


def check_tools(target: Target) -> None:
    cc = target.prefix + "gcc"
    if shutil.which(cc) is None or shutil.which(target.prefix + "g++") is None:
        pkgs = "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib" if target.embedded else "g++"
        raise FirmwareError(f"{cc} not found: apt-get install {pkgs}")


def registered_ops(bundle: Path) -> list[str]:
    """The resolver methods (`AddFullyConnected`, ...) that the bundle's op_resolver.h calls."""
    return re.findall(r"resolver\.(Add\w+)\(", (bundle / "op_resolver.h").read_text())


def kernel_sources(tree: Path, methods: list[str], cmsis_nn: bool) -> list[Path]:
    """The kernel files that define each method's registration, their *_common.cc, and kernel_util.cc; with
    CMSIS-NN, its version of a kernel replaces the reference one."""
    kernels = tree / "tensorflow/lite/micro/kernels"
    header = (tree / "tensorflow/lite/micro/micro_mutable_op_resolver.h").read_text()
    candidates = sorted(p for p in kernels.glob("*.cc") if not p.name.endswith("_test.cc"))
    optimized = {p.name: p for p in (kernels / "cmsis_nn").glob("*.cc")} if cmsis_nn else {}
    chosen = {kernels / "kernel_util.cc"}
    for method in methods:
        m = re.search(rf"TfLiteStatus {method}\([^)]*?(Register_\w+)\(\)", header, re.S)
        if not m:
            raise FirmwareError(f"op_resolver.h calls {method}, which this TFLite Micro's resolver does not have")
        defines = re.compile(rf"TFLMRegistration\s+{m.group(1)}\s*\(\s*\)\s*\{{")
        files = [p for p in candidates if defines.search(p.read_text())]
        if not files:
            raise FirmwareError(f"no TFLite Micro kernel defines {m.group(1)} (for {method})")
        for p in files:
            chosen.add(p)
            common = p.with_name(p.stem + "_common.cc")
            if common.exists():
                chosen.add(common)
    return sorted(optimized.get(p.name, p) for p in chosen)


def core_sources(tree: Path) -> list[Path]:
    """TFLM's library sources without kernels (the Makefile's MICROLITE_CC_BASE_SRCS, tests left out)."""
    micro = tree / "tensorflow/lite/micro"
    srcs = [p for p in micro.glob("*.cc") if not p.name.endswith("_test.cc") and p.name not in CORE_EXCLUDE]
    for sub in ("arena_allocator", "memory_planner", "tflite_bridge"):
        srcs += [p for p in (micro / sub).glob("*.cc") if not p.name.endswith("_test.cc")]
    skip = ("tensorflow/lite/micro/", "tensorflow/lite/experimental/", "tensorflow/lite/array.cc")  # as the Makefile
    for p in (tree / "tensorflow").rglob("*.c*"):
        if p.suffix in (".cc", ".c") and not p.relative_to(tree).as_posix().startswith(skip):
            srcs.append(p)
    return sorted(srcs)


def cmsis_nn_sources(tree: Path) -> list[Path]:
    src = tree / "tensorflow/lite/micro/tools/make/downloads/cmsis_nn/Source"
    return sorted(p for p in src.rglob("*.c") if not p.name.endswith(("_f16.c", "_f32.c", "nntables_flt.c")))


def include_flags(tree: Path, target: Target) -> list[str]:
    dl = tree / "tensorflow/lite/micro/tools/make/downloads"
    incs = [tree, dl / "flatbuffers/include", dl / "gemmlowp", dl / "ruy", dl / "kissfft"]
    if target.embedded:
        dfp = dl / "cmsis/Cortex_DFP/Device" / target.device
        incs += [dl / "cmsis/CMSIS/Core/Include", dfp / "Include"]
    if target.cmsis_nn:
        incs += [dl / "cmsis", dl / "cmsis_nn", dl / "cmsis_nn/Include"]
    return [f"-I{p}" for p in incs]


def target_flags(target: Target) -> list[str]:
    flags = [*COMMON_FLAGS, *target.arch_flags, *target.defines]
    if target.embedded:
        # newlib-nano: a printf without floats, 20 KB less than newlib's (the app prints fixed point).
        flags += ["-DTF_LITE_MCU_DEBUG_LOG", "--specs=rdimon.specs", "--specs=nano.specs"]
    if target.cmsis_nn:
        flags += ["-DCMSIS_NN", "-DARM_NN_ENABLE_F16=0", "-DARM_NN_ENABLE_F32=0"]
    return flags


@dataclass
class Compiler:
    target: Target
    tree: Path
    obj_dir: Path
    extra: list[str] = field(default_factory=list)

    def command(self, src: Path, obj: Path, opt: str) -> list[str]:
        cxx = src.suffix == ".cc"
        tool = self.target.prefix + ("g++" if cxx else "gcc")
        lang = CXX_FLAGS if cxx else ["-std=c11"]
        flags = [*target_flags(self.target), *lang, opt, *include_flags(self.tree, self.target), *self.extra]
        return [tool, *flags, "-c", str(src), "-o", str(obj)]

    def object_for(self, src: Path, opt: str) -> Path:
        """Compile `src` unless its cached object exists; returns the object (written atomically)."""
        rel = src.relative_to(self.tree) if src.is_relative_to(self.tree) else Path(src.name)
        obj = self.obj_dir / rel.with_suffix(rel.suffix + ".o")
        if obj.exists():
            return obj
        obj.parent.mkdir(parents=True, exist_ok=True)
        tmp = obj.with_name(obj.name + f".{os.getpid()}.tmp")
        proc = subprocess.run(self.command(src, tmp, opt), capture_output=True, text=True)
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise FirmwareError(f"compiling {src} failed:\n{proc.stderr[-3000:]}")
        tmp.replace(obj)
        return obj

    def objects(self, jobs: list[tuple[Path, str]], desc: str) -> list[Path]:
        with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
            return list(tqdm(pool.map(lambda j: self.object_for(*j), jobs), total=len(jobs), desc=desc, leave=False))


def library_key(target: Target, tree: Path) -> str:
    text = " ".join([target.prefix, *target_flags(target), *CXX_FLAGS, tree.parent.name])
    return f"{target.name}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def archive(target: Target, objects: list[Path], path: Path) -> Path:
    """A static library of `objects` (the linker then takes only what the app references)."""
    key = hashlib.sha256("\n".join(map(str, sorted(objects))).encode()).hexdigest()[:10]
    lib = path.with_name(f"{path.stem}-{key}.a")
    if not lib.exists():
        tmp = lib.with_name(lib.name + f".{os.getpid()}.tmp")
        subprocess.run([target.prefix + "ar", "rcs", str(tmp), *map(str, objects)], check=True)
        tmp.replace(lib)
    return lib


def board_support(target: Target, tree: Path, out: Path, compiler: Compiler) -> list[str]:
    """Link flags for the QEMU board: Cortex_DFP's vector table, reset handler and linker script, sized to its
    memory (as the kit's qemu-system/make_bsp.sh, but built with this target's float ABI)."""
    dfp = tree / "tensorflow/lite/micro/tools/make/downloads/cmsis/Cortex_DFP/Device" / target.device
    script = (dfp / "Config" / f"{target.device}_gcc.ld").read_text()
    sizes = {"__ROM_SIZE": target.rom, "__RAM_SIZE": target.ram, "__STACK_SIZE": 0x10000, "__HEAP_SIZE": 0x10000}
    for name, value in sizes.items():
        script, n = re.subn(rf"^{name}\s*=\s*[^;]+;", f"{name} = 0x{value:08X};", script, flags=re.M)
        if n != 1:
            raise FirmwareError(f"{dfp}: unexpected linker script (no {name})")
    (out / "board.ld").write_text(script)
    bsp = Compiler(target, tree, compiler.obj_dir / "bsp" / target.device, [*compiler.extra, f"-D{target.device}"])
    objs = [bsp.object_for(dfp / "Source" / f"{kind}_{target.device}.c", "-O2") for kind in ("startup", "system")]
    flags = ["-T", str(out / "board.ld"), *map(str, objs), "-Wl,--no-warn-rwx-segments"]
    if target.cpu == "cortex-m55":
        # newlib's rdimon start-up moves SP to where QEMU's semihosting says the stack is, which trips the
        # ARMv8-M stack-limit register that the CMSIS reset handler sets: turn the check off (kit README, trap 8).
        flags.append("-Wl,--defsym=__tflm_kit_stack_limit=0")
    return flags


def build(
    export_dir: Path, target_name: str, out: Path | None = None, kit: str | Path | None = None, debug: bool = False
) -> Path:
    """Build the firmware of `export_dir`'s bundle for `target_name` (TFLite Micro's release build unless `debug`);
    returns the executable (an ELF image)."""
    if target_name not in TARGETS:
        raise FirmwareError(f"unknown target {target_name!r}; choose from {sorted(TARGETS)}")
    target = TARGETS[target_name]
    if not debug:
        target = replace(target, defines=(*target.defines, *RELEASE_DEFINES))
    bundle = Path(export_dir) / MCU_DIR
    missing = [name for name in ("op_resolver.h", *BUNDLE_SOURCES) if not (bundle / name).is_file()]
    if missing:
        raise FirmwareError(f"{bundle}: no {', '.join(missing)}; export (again) with `asr export ... --mcu`")
    check_tools(target)
    tree = tflm_tree(find_kit(kit))
    out = Path(out or Path(export_dir) / "firmware" / (target_name + "-debug" * debug))
    out.mkdir(parents=True, exist_ok=True)
    lib_dir = cache_root() / tree.parent.name / library_key(target, tree)
    extra = ["-D__STACK_LIMIT=__tflm_kit_stack_limit"] if target.cpu == "cortex-m55" else []
    compiler = Compiler(target, tree, lib_dir, extra)

    kernels = kernel_sources(tree, registered_ops(bundle), target.cmsis_nn)
    jobs = [(p, "-Os") for p in core_sources(tree)] + [(p, "-O2") for p in kernels]
    libs = [archive(target, compiler.objects(jobs, f"TFLM {target_name}"), lib_dir / "tflm")]
    if target.cmsis_nn:
        nn_jobs = [(p, "-O2") for p in cmsis_nn_sources(tree)]
        libs.append(archive(target, compiler.objects(nn_jobs, "CMSIS-NN"), lib_dir / "cmsis_nn"))

    app = Compiler(target, tree, out / "obj", [f"-I{bundle}", f"-I{SUPPORT}"] + (["-DKWS_PROFILE"] * target.embedded))
    shutil.rmtree(app.obj_dir, ignore_errors=True)  # the bundle changes with every export: always rebuild it
    sources = [bundle / name for name in BUNDLE_SOURCES]
    if target.embedded:
        sources.append(Path(str(SUPPORT / "board_sbrk.c")))
    app_objs = app.objects([(src, "-Os" if src.name in SIZE_OPTIMIZED else "-O2") for src in sources], "bundle")
    exe = out / ("kws.elf" if target.embedded else "kws")
    link = [target.prefix + "g++", *target_flags(target), "-Wl,--gc-sections", f"-Wl,-Map={exe.with_suffix('.map')}"]
    link += ["-o", str(exe), *map(str, app_objs)]
    if target.embedded:
        link += board_support(target, tree, out, compiler)
    link += [*map(str, libs), "-lm"]
    proc = subprocess.run(link, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FirmwareError(f"linking {exe} failed:\n{proc.stderr[-4000:]}")
    return exe


def qemu_command(target_name: str, image: Path, args: list[str], icount: bool = True) -> list[str]:
    """qemu-system-arm running `image` on the target's board, with semihosting for files and argv."""
    target = TARGETS[target_name]
    if not target.embedded:
        raise FirmwareError("the host target runs directly, not under QEMU")
    if shutil.which("qemu-system-arm") is None:
        raise FirmwareError("qemu-system-arm not found: apt-get install qemu-system-arm")
    semi = ",".join(["enable=on", "target=native", *(f"arg={a}" for a in ["kws", *args])])
    cmd = ["qemu-system-arm", "-M", target.machine, "-cpu", target.cpu, "-nographic", "-monitor", "none"]
    cmd += ["-serial", "none", "-semihosting-config", semi, "-kernel", str(image)]
    return cmd + (["-icount", "shift=0,align=off,sleep=off"] if icount else [])


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("export_dir", type=Path, help="an `asr export --mcu` output folder")
    parser.add_argument("--target", choices=sorted(TARGETS), default="host", help="what to build (default host)")
    parser.add_argument("--out", type=Path, help="build folder (default EXPORT_DIR/firmware/TARGET[-debug])")
    parser.add_argument("--kit", help=f"TFLite Micro kit folder (default ${KIT_ENV} or ../shared/third_party/tflm)")
    parser.add_argument(
        "--debug", action="store_true", help="TFLite Micro's debug build: its error messages and per-op profile"
    )


def run(args: argparse.Namespace) -> int:
    exe = build(args.export_dir, args.target, args.out, args.kit, args.debug)
    print(exe)
    if TARGETS[args.target].embedded:
        print("run: " + " ".join(qemu_command(args.target, exe, ["CLIPS.pcm"])), file=sys.stderr)
    return 0
