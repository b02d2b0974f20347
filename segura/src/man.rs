//! `segura man-pages DIR` (hidden): the manual pages, generated from the clap definitions, that the
//! Debian packages install: segura(8) and one page per subcommand (segura-rec(8), …,
//! segura-policy-add(8)).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

/// What segura(8) says beyond the options: files, environment, related pages.
const SEGURA_EXTRA: &str = r#".SH FILES
.TP
\fI/etc/segura/segura.toml\fR
The configuration and the local rules; see \fBsegura.toml\fR(5).
.TP
\fI/var/lib/segura/spool.db\fR
The spool: recordings, logins and audit events until the platform has acknowledged them.
.TP
\fI/etc/segura/shells\fR
The real shells of enrolled users (\fBsegura enroll\fR, \fBsegura unenroll\fR).
.TP
\fI/etc/segura/wrapped\fR
The programs \fBsegura wrap\fR put the launcher in front of.
.TP
\fI/etc/segura/host.toml\fR
This host's platform credential (\fBsegura enroll\-host\fR), mode 0600.
.SH ENVIRONMENT
.TP
\fBSEGURA_CONFIG\fR
The configuration file, instead of \fI/etc/segura/segura.toml\fR.
.TP
\fBSEGURA_SPOOL\fR
The spool database, instead of \fBspool.path\fR of the configuration.
.SH SEE ALSO
\fBsegura\-shell\fR(8), \fBpam_segura\fR(8), \fBsegura.toml\fR(5), \fBsegura\-server\fR(8),
\fI/usr/share/doc/segura/sysadmin.md.gz\fR
"#;

/// Writes segura.8 and a page per (visible) subcommand into `out`.
pub fn write_pages(out: &Path) -> Result<i32> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let n = write_tree(&cmd, out, true)?;
    println!("{n} manual pages written to {}", out.display());
    Ok(0)
}

fn write_tree(cmd: &clap::Command, out: &Path, top: bool) -> Result<usize> {
    let mut n = 0;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        n += write_tree(sub, out, false)?;
    }
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual("System Administration")
        .source(format!("segura {}", env!("CARGO_PKG_VERSION")));
    let path = out.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)?;
    if top {
        page.extend_from_slice(SEGURA_EXTRA.as_bytes());
    } else {
        page.extend_from_slice(b".SH SEE ALSO\n\\fBsegura\\fR(8)\n");
    }
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&page))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(n + 1)
}
