//! Snapshot of the analysis of every recorded and hand-made input in `test_data/`.

use serde::Serialize;

#[derive(Serialize)]
struct View {
    outcome: Option<&'static str>,
    findings: Vec<captures::Finding>,
    analysis: Option<captures::Analysis>,
    error: Option<String>,
}

#[test]
fn analysis_of_every_test_file() {
    insta::glob!("../../test_data", "**/*.{pcap,pcapng,log,bin}", |path| {
        let opts = captures::AnalyzeOptions::default();
        let view = match captures::analyze_path(path, &opts) {
            Ok(a) => View {
                outcome: captures::outcome_hint(&a).map(|o| o.id()),
                findings: captures::causes(&a),
                analysis: Some(a),
                error: None,
            },
            Err(e) => View {
                outcome: None,
                findings: vec![],
                analysis: None,
                error: Some(e.to_string()),
            },
        };
        insta::assert_yaml_snapshot!(view);
    });
}
