//! Compiles the BPF probes in `src/bpf/` into objects in `$OUT_DIR`, which
//! the extension embeds and loads through its probe host like any plugin.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// Probes to build: `src/bpf/<name>.bpf.c` becomes `$OUT_DIR/<name>.bpf.o`.
const PROBES: &[&str] = &["runq"];
/// The Python package's C SDK: vendored CO-RE vmlinux.h (one directory per
/// target architecture) and the headers plugins compile against.
const SDK_VMLINUX: &str = "python/noisy_neighbor/sdk/vmlinux";
const SDK_INCLUDE: &str = "python/noisy_neighbor/sdk/include";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    // The vendored vmlinux.h makes the build independent of the build host's BTF.
    let vmlinux_dir = format!("{SDK_VMLINUX}/{arch}");
    let target_arch = match arch.as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        other => panic!("no vendored vmlinux.h for {other}; add {SDK_VMLINUX}/{other}/"),
    };
    for probe in PROBES {
        let src = format!("src/bpf/{probe}.bpf.c");
        SkeletonBuilder::new()
            .source(&src)
            .obj(out_dir.join(format!("{probe}.bpf.o")))
            .clang_args([
                format!("-I{vmlinux_dir}"),
                format!("-I{SDK_INCLUDE}"),
                format!("-D__TARGET_ARCH_{target_arch}"),
                // v3 gives the atomic compare-and-swap the histogram max needs.
                "-mcpu=v3".to_string(),
                "-Wall".to_string(),
            ])
            .build()
            .unwrap_or_else(|err| panic!("building {src}: {err:#}"));
    }
    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-changed={SDK_VMLINUX}");
    println!("cargo:rerun-if-changed={SDK_INCLUDE}");
}
