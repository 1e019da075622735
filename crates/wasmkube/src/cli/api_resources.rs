//! `api-resources`: what discovery found, as kubectl prints it.

use std::process::ExitCode;

use super::tabwriter::TabWriter;
use super::{GlobalArgs, Session};

#[derive(clap::Args, Debug)]
pub struct ApiResourcesArgs {
    /// Only namespaced (true) or cluster-scoped (false) resources.
    #[arg(long, action = clap::ArgAction::Set)]
    pub namespaced: Option<bool>,
    /// Only resources in this API group (`""` for core).
    #[arg(long)]
    pub api_group: Option<String>,
    /// `name` prints only resource names; `wide` adds verbs and categories.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Don't print headers.
    #[arg(long)]
    pub no_headers: bool,
    #[command(flatten)]
    pub global: GlobalArgs,
}

pub async fn run(args: ApiResourcesArgs) -> anyhow::Result<ExitCode> {
    let wide = match args.output.as_deref() {
        None => false,
        Some("wide") => true,
        Some("name") => false,
        Some(o) => anyhow::bail!("--output {o} is not available; use wide or name"),
    };
    let names_only = args.output.as_deref() == Some("name");
    let session = Session::connect(&args.global).await?;
    let discovery = session.discovery().await?;
    let mut resources: Vec<_> = discovery
        .all()
        .iter()
        .filter(|r| r.preferred)
        .filter(|r| args.namespaced.is_none_or(|n| n == r.namespaced))
        .filter(|r| args.api_group.as_deref().is_none_or(|g| g == r.group))
        .collect();
    // kubectl sorts by group, then by name.
    resources.sort_by(|a, b| (&a.group, &a.resource).cmp(&(&b.group, &b.resource)));
    if names_only {
        for r in resources {
            outln!("{}", r.group_resource());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut w = TabWriter::for_tables();
    if !args.no_headers {
        w.write(if wide {
            "NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND\tVERBS\tCATEGORIES\n"
        } else {
            "NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND\n"
        });
    }
    for r in resources {
        let mut line = format!(
            "{}\t{}\t{}\t{}\t{}",
            r.resource,
            r.short_names.join(","),
            r.api_version(),
            r.namespaced,
            r.kind
        );
        if wide {
            line.push_str(&format!(
                "\t[{}]\t{}",
                r.verbs.join(" "),
                r.categories.join(",")
            ));
        }
        line.push('\n');
        w.write(&line);
    }
    out!("{}", w.flush());
    Ok(ExitCode::SUCCESS)
}
