//! Property tests: whatever a user (or an agent) writes into a handoff, a config file
//! or a glob, baton answers with a value or an error, never a panic.

use baton::config::Config;
use baton::handoff::Handoff;
use baton::scope::Scope;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_parses_as_a_handoff_or_fails_cleanly(text in any::<String>()) {
        let _ = Handoff::parse(&text);
    }

    #[test]
    fn front_matter_shaped_text_parses_or_fails_cleanly(
        front in "[a-z_]{0,12} = (\"[^\"\\n]{0,20}\"|\\[[^\\]\\n]{0,30}\\]|[0-9]{0,5}|\"[0-9]{1,4}[smhx]{0,2}\")",
        body in any::<String>(),
    ) {
        let doc = format!("+++\ntask = \"t\"\n{front}\n+++\n{body}");
        if let Ok(h) = Handoff::parse(&doc) {
            // What parses writes back to a document that parses to the same contract.
            prop_assert_eq!(Handoff::parse(&h.to_document()).unwrap().contract, h.contract);
        }
    }

    #[test]
    fn any_text_parses_as_a_config_or_fails_cleanly(text in any::<String>()) {
        let _ = toml::from_str::<Config>(&text);
    }

    #[test]
    fn any_globs_compile_or_fail_cleanly(
        allow in proptest::collection::vec("[a-z*?\\[\\]{},/.!\\\\-]{0,12}", 0..4),
        deny in proptest::collection::vec("[a-z*?\\[\\]{},/.!\\\\-]{0,12}", 0..4),
        path in "[a-z./]{0,20}",
    ) {
        if let Ok(scope) = Scope::compile(&allow, &deny) {
            let _ = scope.judge_path(&path);
        }
    }
}
