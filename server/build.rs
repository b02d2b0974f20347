//! Embeds asciinema-player, installed from the npm registry into `web/node_modules` at build
//! time (`npm ci --prefix server/web`), so that the server is one file. Without it the server
//! still builds, and its Session Video page says how to add the player.

use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let bundle = Path::new("web/node_modules/asciinema-player/dist/bundle");
    println!("cargo:rerun-if-changed=web/package-lock.json");
    for (file, what) in [
        ("asciinema-player.min.js", "script"),
        ("asciinema-player.css", "stylesheet"),
    ] {
        let src = bundle.join(file);
        println!("cargo:rerun-if-changed={}", src.display());
        let data = match std::fs::read(&src) {
            Ok(d) => d,
            Err(_) => {
                println!(
                    "cargo:warning=asciinema-player {what} not found at server/{}: run `npm ci --prefix server/web` and rebuild for the Session Video page",
                    src.display()
                );
                Vec::new()
            }
        };
        std::fs::write(Path::new(&out).join(file), data).expect("writing to OUT_DIR");
    }
}
