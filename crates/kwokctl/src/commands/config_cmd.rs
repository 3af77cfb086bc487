//! `kwokctl config view | tidy | reset`: the default configuration `<workdir>/kwok.yaml`.

use anyhow::Context as _;

use crate::config::render_documents;
use crate::context::Context;

pub fn view(ctx: &Context) -> anyhow::Result<()> {
    print!("{}", render_documents(&ctx.config.documents)?);
    Ok(())
}

pub fn tidy(ctx: &Context) -> anyhow::Result<()> {
    let path = ctx.workdir.default_config();
    let text = render_documents(&ctx.config.tidy_documents()?)?;
    if ctx.dry_run {
        crate::dryrun::say(format!("cat <<EOF >{}\n{text}EOF", path.display()));
        return Ok(());
    }
    std::fs::create_dir_all(&ctx.workdir.root)
        .with_context(|| format!("create {}", ctx.workdir.root.display()))?;
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

pub fn reset(ctx: &Context) -> anyhow::Result<()> {
    let path = ctx.workdir.default_config();
    if ctx.dry_run {
        crate::dryrun::say(format!("rm {}", path.display()));
        return Ok(());
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("remove {}", path.display())),
    }
}
