//! `engram import` and `engram export`: moving session stores into and out of engram.

pub mod jsonl;
pub mod pocketpaw;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::config::StoreArgs;
use crate::progress;

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub source: ImportSource,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ImportSource {
    /// A PocketPaw memory directory (the one holding `sessions/`, or `sessions/` itself).
    /// Safe to re-run: sessions already present only receive the messages they lack.
    Pocketpaw {
        dir: PathBuf,
        /// Workspace receiving the sessions.
        #[arg(long = "pocketpaw-workspace", env = "ENGRAM_POCKETPAW_WORKSPACE",
              default_value = engram_core::pocketpaw::DEFAULT_WORKSPACE)]
        workspace: String,
    },
    /// JSON Lines written by `engram export` (`-` reads standard input).
    Jsonl { file: PathBuf },
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// The workspace to write.
    #[arg(long)]
    pub workspace: String,
    /// Only this session of it (with the peers that are its members).
    #[arg(long)]
    pub session: Option<String>,
    /// Output file; standard output when omitted.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

impl ExportArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let store = self.store.open().await?;
        let session = self.session.as_deref();
        let bar = progress::items(0, "sessions");
        let (sessions, messages) = match &self.output {
            Some(path) => {
                let file = std::fs::File::create(path)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
                let mut out = std::io::BufWriter::new(file);
                jsonl::export(store.as_ref(), &self.workspace, session, &mut out, &bar).await?
            }
            None => {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                jsonl::export(store.as_ref(), &self.workspace, session, &mut out, &bar).await?
            }
        };
        bar.finish_and_clear();
        eprintln!("exported {sessions} session(s), {messages} message(s)");
        Ok(())
    }
}

impl ImportArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let store = self.store.open().await?;
        match self.source {
            ImportSource::Pocketpaw { dir, workspace } => {
                let bar = progress::items(0, "files");
                let report = pocketpaw::import_dir(store.as_ref(), &workspace, &dir, &bar).await?;
                bar.finish_and_clear();
                print!("{report}");
                Ok(())
            }
            ImportSource::Jsonl { file } => {
                let (sessions, messages) = if file.as_os_str() == "-" {
                    let bar = progress::spinner("bytes read");
                    let input = std::io::BufReader::new(bar.wrap_read(std::io::stdin()));
                    let imported = jsonl::import(store.as_ref(), input).await;
                    bar.finish_and_clear();
                    imported?
                } else {
                    let f = std::fs::File::open(&file)
                        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))?;
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    let bar = progress::bytes(len, "read");
                    let input = std::io::BufReader::new(bar.wrap_read(f));
                    let imported = jsonl::import(store.as_ref(), input).await;
                    bar.finish_and_clear();
                    imported?
                };
                println!("{sessions} session(s) created, {messages} message(s) imported");
                Ok(())
            }
        }
    }
}
