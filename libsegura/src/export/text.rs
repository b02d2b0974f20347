//! Text exports. The transcript interprets terminal escapes with a terminal emulator (avt, the
//! one asciinema uses), so it reads as the screen did, scrollback included. The command list is
//! the line at the cursor each time Enter is pressed.

use super::{Item, Timeline, Utf8Stream};
use crate::chunk::Event;
use crate::spool::Mode;

/// A command line and when Enter was pressed (microseconds after the start).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommandLine {
    pub t_us: u64,
    pub line: String,
}

fn new_vt(tl: &Timeline) -> avt::Vt {
    let m = &tl.row.meta;
    avt::Vt::builder()
        .size(usize::from(m.cols.max(1)), usize::from(m.rows.max(1)))
        .build()
}

/// The whole session as text, as the screen showed it (pty mode), or stdout and stderr as
/// written (pipe mode).
pub fn transcript(tl: &Timeline) -> String {
    if tl.row.meta.mode == Mode::Pipe {
        let mut out = String::new();
        let (mut o, mut e) = (Utf8Stream::default(), Utf8Stream::default());
        for item in &tl.items {
            match &item.item {
                Item::Output(d) => out.push_str(&o.decode(d)),
                Item::Stderr(d) => out.push_str(&e.decode(d)),
                _ => {}
            }
        }
        out.push_str(&o.finish());
        out.push_str(&e.finish());
        return out;
    }
    let mut vt = new_vt(tl);
    let mut utf8 = Utf8Stream::default();
    for item in &tl.items {
        match &item.item {
            Item::Output(d) => {
                vt.feed_str(&utf8.decode(d));
            }
            Item::Event(Event::Resize { cols, rows }) => {
                vt.resize(usize::from(*cols), usize::from(*rows));
            }
            _ => {}
        }
    }
    vt.feed_str(&utf8.finish());
    let mut lines = vt.text();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The commands typed: in pty mode the line at the cursor when Enter was pressed (prompt
/// included, as the auditor saw it); in pipe mode each line fed to stdin.
pub fn commands(tl: &Timeline) -> Vec<CommandLine> {
    let mut out = Vec::new();
    if tl.row.meta.mode == Mode::Pipe {
        let mut line = Vec::new();
        let mut first = None;
        for item in &tl.items {
            if let Item::Input(d) = &item.item {
                for &b in d {
                    first.get_or_insert(item.t_us);
                    if b == b'\n' {
                        push_line(&mut out, first.take().unwrap_or(item.t_us), &line);
                        line.clear();
                    } else {
                        line.push(b);
                    }
                }
            }
        }
        if let Some(t) = first {
            push_line(&mut out, t, &line);
        }
        return out;
    }
    // Enter is seen on the input stream before the program echoes what was typed with it (a
    // pasted or fast-typed line arrives whole), so each line is read when the echo of its Enter
    // (the next newline in the output) is about to move the cursor on.
    let mut vt = new_vt(tl);
    let mut utf8 = Utf8Stream::default();
    let mut pending: std::collections::VecDeque<u64> = Default::default();
    let capture = |vt: &avt::Vt, t_us: u64, out: &mut Vec<CommandLine>| {
        let row = vt.cursor().row;
        let line = vt.view().get(row).map(|l| l.text()).unwrap_or_default();
        let line = line.trim_end();
        if !line.is_empty() {
            out.push(CommandLine {
                t_us,
                line: line.to_string(),
            });
        }
    };
    for item in &tl.items {
        match &item.item {
            Item::Output(d) => {
                let text = utf8.decode(d);
                let mut rest = text.as_str();
                while !pending.is_empty() {
                    let Some(nl) = rest.find('\n') else { break };
                    vt.feed_str(&rest[..nl]);
                    if let Some(t) = pending.pop_front() {
                        capture(&vt, t, &mut out);
                    }
                    vt.feed_str("\n");
                    rest = &rest[nl + 1..];
                }
                vt.feed_str(rest);
            }
            Item::Event(Event::Resize { cols, rows }) => {
                vt.resize(usize::from(*cols), usize::from(*rows));
            }
            Item::Input(d) => {
                let enters = d.iter().filter(|&&b| b == b'\r' || b == b'\n').count();
                pending.extend(std::iter::repeat_n(item.t_us, enters));
            }
            _ => {}
        }
    }
    for t in pending {
        capture(&vt, t, &mut out);
    }
    out
}

fn push_line(out: &mut Vec<CommandLine>, t_us: u64, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r').trim_end();
    if !text.is_empty() {
        out.push(CommandLine {
            t_us,
            line: text.to_string(),
        });
    }
}
