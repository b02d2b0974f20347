//! asciicast v2: a JSON header line, then one `[time, code, data]` line per event: `o` output,
//! `i` input, `r` resize (`COLSxROWS`), `m` marker. Accepted by asciinema's player and CLI.

use std::io::Write;

use serde_json::json;

use super::{ExportError, Item, Timeline, Utf8Stream};
use crate::chunk::Event;

/// Writes the recording as asciicast v2.
pub fn write_asciicast(tl: &Timeline, out: &mut impl Write) -> Result<(), ExportError> {
    let m = &tl.row.meta;
    let mut env = serde_json::Map::new();
    if let Some(term) = &m.term {
        env.insert("TERM".into(), json!(term));
    }
    let header = json!({
        "version": 2,
        "width": m.cols,
        "height": m.rows,
        "timestamp": m.started_at.div_euclid(1_000_000),
        "command": m.command.join(" "),
        "title": format!("{}@{}: {}", m.user, m.host, m.command.join(" ")),
        "env": env,
    });
    writeln!(out, "{header}")?;
    let (mut o, mut e, mut i) = (
        Utf8Stream::default(),
        Utf8Stream::default(),
        Utf8Stream::default(),
    );
    let line = |out: &mut dyn Write, t_us: u64, code: &str, data: &str| -> std::io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let t = t_us as f64 / 1e6;
        writeln!(out, "[{t:.6}, {}, {}]", json!(code), json!(data))
    };
    for item in &tl.items {
        let t = item.t_us;
        match &item.item {
            Item::Output(d) => line(out, t, "o", &o.decode(d))?,
            Item::Stderr(d) => line(out, t, "o", &e.decode(d))?,
            Item::Input(d) => line(out, t, "i", &i.decode(d))?,
            Item::Event(Event::Resize { cols, rows }) => {
                line(out, t, "r", &format!("{cols}x{rows}"))?
            }
            Item::Event(Event::HiddenInput) => {
                line(out, t, "m", "input hidden (terminal echo off)")?
            }
            Item::Event(Event::Notice(n)) => line(out, t, "m", &format!("notice: {n}"))?,
            Item::Event(Event::Truncated(why)) => {
                line(out, t, "m", &format!("recording stopped: {why}"))?
            }
            Item::Unknown(_) => {}
        }
    }
    let end_us = tl.items.last().map_or(0, |i| i.t_us);
    line(out, end_us, "o", &o.finish())?;
    line(out, end_us, "o", &e.finish())?;
    Ok(())
}
