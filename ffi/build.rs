// The shared library's SONAME carries the ABI version (libsegura.so.0).
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsegura.so.0");
}
