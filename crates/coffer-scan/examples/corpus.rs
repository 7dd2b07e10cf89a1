//! Writes the generated corpus to a directory, with `labels.json` beside it, for the benchmark
//! against other scanners: `cargo run -p coffer-scan --example corpus -- OUT_DIR [FILES]`.

#[path = "../tests/support/corpus.rs"]
mod corpus;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().expect("usage: corpus OUT_DIR [FILES]"));
    let n: usize = args
        .next()
        .map_or(600, |s| s.parse().expect("FILES is a number"));
    let c = corpus::generate(0x5EC2E7, n);
    let tree = out.join("tree");
    for (path, content) in &c.files {
        let p = tree.join(path);
        std::fs::create_dir_all(p.parent().expect("generated paths have a parent"))?;
        std::fs::write(p, content)?;
    }
    let labels: Vec<serde_json::Value> = c
        .labels
        .iter()
        .map(|l| serde_json::json!({"file": l.file, "line": l.line, "kind": l.kind}))
        .collect();
    std::fs::write(
        out.join("labels.json"),
        serde_json::to_string_pretty(&labels)?,
    )?;
    eprintln!(
        "{} files, {} labelled secrets in {}",
        c.files.len(),
        c.labels.len(),
        tree.display()
    );
    Ok(())
}
