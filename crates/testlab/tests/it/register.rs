//! REGISTER through the lab: good and wrong credentials, unknown accounts, un-REGISTER, options.

use testlab::{AuthMode, DigestAlgorithm, Lab, LabOptions};

#[test]
fn good_credentials_register_and_unregister_removes_the_binding() {
    let lab = Lab::start().unwrap();
    let alice = lab.account("alice").unwrap().clone();
    let out = lab.sipp_register(&alice.user, &alice.password).unwrap();
    assert!(out.success, "{}", out.trace);
    assert_eq!(out.statuses, [401, 200]);
    assert!(!out.trace.contains(&alice.password));

    let dump = lab.rpc("ul.dump", serde_json::json!(["brief"])).unwrap();
    assert!(dump.to_string().contains("\"AoR\":\"alice\""), "{dump}");
    let lookup = lab
        .rpc("ul.lookup", serde_json::json!(["location", "alice"]))
        .unwrap();
    assert!(
        lookup.to_string().contains("sip:alice@127.0.0.1:"),
        "{lookup}"
    );
    assert_eq!(
        lab.sql("SELECT count(*) FROM location WHERE username='alice'")
            .unwrap(),
        "1"
    );

    let out = lab.sipp_unregister(&alice.user, &alice.password).unwrap();
    assert_eq!(out.final_status, Some(200), "{}", out.trace);
    let err = lab
        .rpc("ul.lookup", serde_json::json!(["location", "alice"]))
        .unwrap_err();
    assert!(err.to_string().contains("AOR"), "{err}");
}

#[test]
fn wrong_password_gets_403_with_a_warning_and_leaves_a_trace() {
    let lab = Lab::start().unwrap();
    let out = lab.sipp_register("bob", "not-bobs-password").unwrap();
    assert!(!out.success);
    assert_eq!(out.final_status, Some(403), "{}", out.trace);
    assert!(out.trace.contains("Warning: 399"), "{}", out.trace);
    assert!(
        out.trace.contains("response=\"<redacted>\""),
        "{}",
        out.trace
    );
    let rows = lab
        .sql("SELECT method, status, direction FROM sip_trace WHERE traced_user='bob' ORDER BY id")
        .unwrap();
    assert_eq!(
        rows,
        "REGISTER||in\nREGISTER|401|out\nREGISTER||in\nREGISTER|403|out"
    );
    let log = lab.kamailio_log();
    assert!(
        log.contains("LAB: auth failed (-2 invalid password) REGISTER from sip:bob@"),
        "{log}"
    );
    assert!(!log.contains("not-bobs-password"));
    assert!(!log.contains(&lab.account("bob").unwrap().password));
    let err = lab.rpc("ul.lookup", serde_json::json!(["location", "bob"]));
    assert!(err.is_err());
}

#[test]
fn unknown_account_gets_404_with_a_warning() {
    let lab = Lab::start().unwrap();
    let out = lab.sipp_register("mallory", "whatever").unwrap();
    assert_eq!(out.final_status, Some(404), "{}", out.trace);
    assert!(out.trace.contains("\"unknown user\""), "{}", out.trace);
}

#[test]
fn stock_mode_rechallenges_a_wrong_password() {
    let lab = Lab::start_with(LabOptions {
        auth: AuthMode::Rechallenge401,
        ..LabOptions::default()
    })
    .unwrap();
    let out = lab.sipp_register("bob", "not-bobs-password").unwrap();
    assert!(!out.success);
    assert_eq!(out.final_status, Some(401), "{}", out.trace);
    assert!(
        out.statuses.len() >= 2 && out.statuses.iter().all(|s| *s == 401),
        "{:?}",
        out.statuses
    );
    assert!(!out.trace.contains("Warning:"), "{}", out.trace);
    let bob = lab.account("bob").unwrap();
    assert_eq!(
        lab.sipp_register(&bob.user, &bob.password)
            .unwrap()
            .final_status,
        Some(200)
    );
}

#[test]
fn sha256_mode_challenges_with_sha256() {
    let lab = Lab::start_with(LabOptions {
        digest: DigestAlgorithm::Sha256,
        ..LabOptions::default()
    })
    .unwrap();
    assert_eq!(lab.env()["LAB_DIGEST_ALGORITHM"], "SHA-256");
    // SIPp 3.6.1 cannot answer a SHA-256 challenge; the challenge itself is checked.
    let bob = lab.account("bob").unwrap();
    let out = lab.sipp_register(&bob.user, &bob.password).unwrap();
    assert_eq!(out.statuses.first(), Some(&401), "{}", out.trace);
    assert!(out.trace.contains("algorithm=SHA-256"), "{}", out.trace);
}
