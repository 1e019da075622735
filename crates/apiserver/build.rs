//! The web console's files are embedded with `include_dir!`, which (on stable Rust) does not tell
//! cargo about them: rebuild when anything under `web/` changes.
fn main() {
    println!("cargo:rerun-if-changed=../../web");
    println!("cargo:rerun-if-changed=build.rs");
}
