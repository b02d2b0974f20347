//! The checked-in segura.h is what cbindgen makes of the current source (regenerate with
//! `SEGURA_UPDATE_HEADER=1 cargo test -p segura-ffi --test header`).

#[test]
fn the_checked_in_header_is_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen")
        .write(&mut generated);
    let path = dir.join("segura.h");
    if std::env::var_os("SEGURA_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "ffi/segura.h is out of date: run SEGURA_UPDATE_HEADER=1 cargo test -p segura-ffi --test header"
    );
}
