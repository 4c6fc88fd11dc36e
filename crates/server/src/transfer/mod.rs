//! `engram import`: moving existing session stores into engram.

pub mod pocketpaw;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::config::StoreArgs;

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
}

impl ImportArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let store = self.store.open().await?;
        match self.source {
            ImportSource::Pocketpaw { dir, workspace } => {
                let report = pocketpaw::import_dir(store.as_ref(), &workspace, &dir).await?;
                print!("{report}");
                Ok(())
            }
        }
    }
}
