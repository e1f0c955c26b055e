"""Builds relu_ext._C: CPU kernels always, CUDA kernels when torch is a CUDA build and a CUDA toolkit is found.

Switches (environment): RELU_EXT_CUDA=0 forces a CPU-only build, RELU_EXT_CUDA=1 makes a missing toolkit an error,
DEBUG=1 compiles with -O0 -g, RELU_EXT_SANITIZE=address,undefined builds the CPU code with those sanitizers.
TORCH_CUDA_ARCH_LIST and MAX_JOBS are honoured as torch.utils.cpp_extension honours them.
"""
import glob
import hashlib
import os
import shutil
import subprocess

import torch
from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))
# With no GPU visible and no list given, torch would build for every arch it knows (slow). This short list runs on
# Ampere (sm_80 SASS, also loaded by sm_86/sm_89), Hopper (sm_90 SASS) and newer GPUs (sm_90 PTX, JIT-compiled).
DEFAULT_ARCH_LIST = "8.0;9.0+PTX"


def _is_toolkit(path):
    """A CUDA toolkit is a folder with bin/nvcc and the runtime library that the link needs."""
    if not path or not os.path.isfile(os.path.join(path, "bin", "nvcc")):
        return False
    return any(os.path.exists(os.path.join(path, lib, "libcudart.so")) for lib in ("lib64", "lib"))


def _nvcc_top(nvcc):
    """nvcc prints its real install folder (TOP=...) in a dry run, even when the nvcc on PATH is a wrapper script."""
    try:
        run = subprocess.run([nvcc, "-dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in (run.stdout + run.stderr).splitlines():
        if "TOP=" in line:
            return os.path.normpath(line.split("TOP=", 1)[1].strip())
    return None


def find_cuda_toolkit():
    """Returns (toolkit folder or None, the folders that were looked at)."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
        candidates.append(_nvcc_top(nvcc))
    candidates += ["/usr/local/cuda"] + sorted(glob.glob("/usr/local/cuda-*"), reverse=True) + ["/opt/cuda"]
    looked = [c for c in dict.fromkeys(candidates) if c]
    return next((c for c in looked if _is_toolkit(c)), None), looked


def decide_cuda():
    """The one place that decides between a CUDA and a CPU-only build. Returns (toolkit or None, reason)."""
    switch = os.environ.get("RELU_EXT_CUDA", "")
    if switch == "0":
        return None, "RELU_EXT_CUDA=0 asks for a CPU-only build"
    if torch.version.cuda is None:
        reason = f"the installed torch {torch.__version__} is not a CUDA build"
    else:
        toolkit, looked = find_cuda_toolkit()
        if toolkit:
            return toolkit, f"CUDA toolkit {toolkit}, torch {torch.__version__}"
        reason = "no CUDA toolkit found (looked for bin/nvcc beside lib64/libcudart.so in: " + ", ".join(looked) + ")"
    if switch == "1":
        raise SystemExit(f"relu_ext: RELU_EXT_CUDA=1 but {reason}")
    return None, reason


toolkit, reason = decide_cuda()
if toolkit:
    # torch.utils.cpp_extension reads CUDA_HOME when it is imported; point it at the real toolkit first.
    os.environ["CUDA_HOME"] = toolkit
    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCH_LIST
    reason += f", TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', 'the visible GPUs')}"
print(f"relu_ext: building {'CPU and CUDA' if toolkit else 'CPU-only'} kernels: {reason}", flush=True)

from torch.utils import cpp_extension  # noqa: E402  (after CUDA_HOME is set)

if toolkit:
    cpp_extension.CUDA_HOME = toolkit

# The files compiled for one instruction set go last: where files share an inline function, the linker keeps the
# first copy, which must be one that every CPU can run.
sources = ["csrc/relu.cpp", "csrc/relu_autograd.cpp", "csrc/relu_python.cpp", "csrc/relu_cpu_default.cpp",
           "csrc/relu_cpu_avx2.cpp", "csrc/relu_cpu_avx512.cpp"]
if toolkit:
    sources += sorted(glob.glob(os.path.join("csrc", "*.cu")))

debug = os.environ.get("DEBUG", "0") == "1"
sanitize = os.environ.get("RELU_EXT_SANITIZE", "")
source_hash = hashlib.sha256(b"".join(open(s, "rb").read() for s in sorted(glob.glob("csrc/*")))).hexdigest()[:16]
defines = [f'-DRELU_EXT_TORCH_VERSION="{torch.__version__}"', f'-DRELU_EXT_SOURCE_HASH="{source_hash}"',
           f"-DRELU_EXT_WITH_CUDA={1 if toolkit else 0}"]
opt = ["-O0", "-g"] if debug else ["-O3"]
cxx = opt + defines + ["-fopenmp", "-Wno-unknown-pragmas", "-Wno-psabi"]
link = ["-fopenmp"]
if sanitize:
    cxx += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
    link += [f"-fsanitize={sanitize}"]
extra_compile_args = {"cxx": cxx, "nvcc": opt + defines + ["--expt-relaxed-constexpr"]}
Extension = cpp_extension.CUDAExtension if toolkit else cpp_extension.CppExtension

setup(
    ext_modules=[Extension("relu_ext._C", sources, extra_compile_args=extra_compile_args, extra_link_args=link)],
    cmdclass={"build_ext": cpp_extension.BuildExtension},
)
