"""Builds relu_ext._C against the installed torch: CPU kernels always, CUDA kernels when torch is a CUDA build and a
CUDA toolkit of the same major version is found.

Switches (environment): RELU_EXT_CUDA=0 forces a CPU-only build, RELU_EXT_CUDA=1 makes a CPU-only build an error,
DEBUG=1 compiles with -O0 -g, RELU_EXT_SANITIZE=address,undefined builds the C++ with those sanitizers.
TORCH_CUDA_ARCH_LIST and MAX_JOBS are honoured as torch.utils.cpp_extension honours them.
"""
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata

import torch
from setuptools import setup

# torch 2.6 and older: another compiled-autograd interface, and no torch.compiler.is_exporting (tools/ checks the
# releases; docs/BUILD.md has the table).
if torch.__version__ < "2.7.0.dev0":  # a TorchVersion: compares as a release number; 2.7 nightlies pass
    sys.exit(f"relu_ext needs torch 2.7 or newer; torch {torch.__version__} is installed. "
             "Upgrade it (`pip install -U torch`) and build again.")

# With no GPU visible and no list given, torch would build for every arch it knows (slow). This list runs on Ampere
# (sm_80 SASS, also loaded by sm_86/sm_89), Hopper (sm_90 SASS) and newer GPUs (sm_90 PTX, compiled at load).
DEFAULT_ARCH_LIST = "8.0;9.0+PTX"


def _nvcc_top(nvcc):
    """nvcc prints its real install folder (TOP=...) in a dry run, also when the nvcc on PATH is a wrapper script."""
    try:
        run = subprocess.run([nvcc, "-dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in (run.stdout + run.stderr).splitlines():
        if "TOP=" in line:
            return os.path.normpath(line.split("TOP=", 1)[1].strip())
    return None


def _toolkit_version(path):
    """The toolkit's CUDA version from `nvcc --version` ("release 13.0"), or None."""
    try:
        out = subprocess.run([os.path.join(path, "bin", "nvcc"), "--version"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"release (\d+)\.(\d+)", out)
    return f"{match[1]}.{match[2]}" if match else None


def find_cuda_toolkit():
    """A folder with bin/nvcc beside the runtime library the link needs; returns (folder or None, folders looked at)."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates += [os.path.dirname(os.path.dirname(os.path.realpath(nvcc))), _nvcc_top(nvcc)]
    candidates += ["/usr/local/cuda"] + sorted(glob.glob("/usr/local/cuda-*"), reverse=True) + ["/opt/cuda"]
    looked = [c for c in dict.fromkeys(candidates) if c]
    found = next((c for c in looked if os.path.isfile(os.path.join(c, "bin", "nvcc")) and any(
        os.path.exists(os.path.join(c, lib, "libcudart.so")) for lib in ("lib64", "lib"))), None)
    return found, looked


def decide_cuda():
    """The one place that decides between a CUDA and a CPU-only build. Returns (toolkit or None, reason)."""
    switch = os.environ.get("RELU_EXT_CUDA", "")
    if switch == "0":
        return None, "RELU_EXT_CUDA=0 asks for a CPU-only build"
    if torch.version.cuda is None:
        reason = f"the installed torch {torch.__version__} is not a CUDA build"
    else:
        toolkit, looked = find_cuda_toolkit()
        version = _toolkit_version(toolkit) if toolkit else None
        if toolkit is None:
            reason = "no CUDA toolkit found (looked for bin/nvcc beside lib64/libcudart.so in " + ", ".join(looked) + ")"
        elif version is None or version.split(".")[0] != torch.version.cuda.split(".")[0]:
            reason = (f"the CUDA toolkit {toolkit} is CUDA {version} but torch {torch.__version__} was built with CUDA "
                      f"{torch.version.cuda}; for CUDA kernels install a CUDA {torch.version.cuda.split('.')[0]}.x "
                      "toolkit and point CUDA_HOME at it, or install a torch built for your toolkit")
        else:
            return toolkit, f"CUDA {version} toolkit {toolkit}, torch {torch.__version__}"
    if switch == "1":
        sys.exit(f"relu_ext: RELU_EXT_CUDA=1 but {reason}")
    return None, reason


toolkit, reason = decide_cuda()
if toolkit:
    os.environ["CUDA_HOME"] = toolkit  # torch.utils.cpp_extension reads it on import
    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCH_LIST
    reason += f", TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', 'the visible GPUs')}"
build_note = f"{'CPU and CUDA' if toolkit else 'CPU-only'} kernels: {reason}"
print(f"relu_ext: building {build_note} (2-5 minutes on 2 cores; `pip install -v` shows the compiler)", flush=True)
with open(os.path.join("relu_ext", "_build_info.py"), "w") as f:  # what the tests and the benchmark report
    f.write(f"# Written by setup.py.\nBUILD_NOTE = {build_note!r}\n")

from torch.utils import cpp_extension  # noqa: E402  (after CUDA_HOME is set)

# The files compiled for one instruction set go last: where files share an inline function, the linker keeps the
# first copy, which must be one that every CPU can run.
sources = (sorted(glob.glob("csrc/*.cpp")) + ["csrc/cpu/relu_cpu.cpp", "csrc/cpu/kernels_default.cpp",
                                              "csrc/cpu/kernels_avx2.cpp", "csrc/cpu/kernels_avx512.cpp"])
if toolkit:
    sources += sorted(glob.glob("csrc/cuda/*.cu"))

source_files = sorted(glob.glob("csrc/**/*.*", recursive=True))
source_hash = hashlib.sha256(b"".join(open(f, "rb").read() for f in source_files)).hexdigest()[:16]
defines = [f'-DRELU_EXT_TORCH_VERSION="{torch.__version__}"', f'-DRELU_EXT_SOURCE_HASH="{source_hash}"',
           f"-DRELU_EXT_WITH_CUDA={1 if toolkit else 0}"]
opt = ["-O0", "-g"] if os.environ.get("DEBUG") == "1" else ["-O3"]
cxx = opt + defines + ["-fopenmp", "-Wno-unknown-pragmas", "-Wno-psabi"]  # -fopenmp: at::parallel_for's threads
link = ["-fopenmp"]
sanitize = os.environ.get("RELU_EXT_SANITIZE", "")
if sanitize:
    cxx += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
    link += [f"-fsanitize={sanitize}"]
Extension = cpp_extension.CUDAExtension if toolkit else cpp_extension.CppExtension

setup(
    ext_modules=[Extension("relu_ext._C", sources, extra_compile_args={"cxx": cxx, "nvcc": opt + defines},
                           extra_link_args=link)],
    cmdclass={"build_ext": cpp_extension.BuildExtension},
    # A wheel runs only with the torch it was compiled against.
    install_requires=[f"torch=={metadata.version('torch')}"],
)
