//! `segura-server man-pages DIR` (hidden): segura-server(8) and a page per subcommand, generated
//! from the clap definitions, for the Debian package.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

const EXTRA: &str = r#".SH FILES
.TP
\fI/var/lib/segura\-server\fR
The data directory of the packaged service (mode 0700, owned by the \fBsegura\-server\fR system
user): the SQLite store of hosts, users, logins and recordings. Run admin commands as that user,
e.g. \fBrunuser \-u segura\-server \-\- segura\-server admin hosts \-\-data /var/lib/segura\-server\fR.
.TP
\fI/etc/default/segura\-server\fR
\fBSEGURA_SERVER_OPTS\fR: the options of \fBsegura\-server serve\fR used by
\fBsegura\-server.service\fR (listen address, TLS certificate and key).
.SH SEE ALSO
\fBsegura\fR(8), \fBsystemctl\fR(1)
"#;

pub fn write_pages(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let n = write_tree(&cmd, out, true)?;
    println!("{n} manual pages written to {}", out.display());
    Ok(())
}

fn write_tree(cmd: &clap::Command, out: &Path, top: bool) -> anyhow::Result<usize> {
    let mut n = 0;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        n += write_tree(sub, out, false)?;
    }
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual("System Administration")
        .source(format!("segura-server {}", libsegura::VERSION));
    let path = out.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)?;
    page.extend_from_slice(if top {
        EXTRA.as_bytes()
    } else {
        b".SH SEE ALSO\n\\fBsegura\\-server\\fR(8)\n"
    });
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&page))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(n + 1)
}
