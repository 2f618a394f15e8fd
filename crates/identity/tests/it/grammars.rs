//! CAM and RAM documents: the clouds' own examples compile; every malformed shape is refused
//! with its stable kind.

use nubis_identity::policy::{
    ActionMatch, ConditionOp, ContextKey, Predicate, SetQualifier, Value, cam, limits, ram,
};
use nubis_identity::{Effect, Grammar};

/// Examples from CAM's "Condition Keys and Condition Operators" and "Scenarios" pages, and
/// the shape the task names.
const CAM_VALID: &[&str] = &[
    r#"{"version":"2.0","statement":[{"effect":"allow","action":"cos:PutObject","resource":"*",
        "condition":{"ip_equal":{"qcs:ip":["10.217.182.3/24","111.21.33.72/24"]}}}]}"#,
    r#"{"version":"2.0","statement":[{"effect":"allow","action":"name/vpc:AcceptVpcPeeringConnection",
        "resource":"qcs::vpc:sh::pcx/2341","condition":{"string_equal_if_exist":{"vpc:region":"sh"}}}]}"#,
    r#"{"version":"2.0","statement":[{"effect":"allow","action":["cvm:RebootInstances"],"resource":"*",
        "condition":{"for_any_value:string_equal":{"qcs:resource_tag":["部门&研发部"]}}}]}"#,
    r#"{"version":"2.0","statement":[{"effect":"allow","action":"cvm:*","resource":"*",
        "condition":{"ip_equal":{"qcs:ip":"192.168.1.1"},
                     "date_less_than":{"qcs:current_time":"2022-05-31T00:00:00Z"}}}]}"#,
    r#"{"version":"2.0","statement":[{"effect":"deny","action":["cvm:Describe*","cvm:RebootInstances"],
        "resource":["qcs::cvm:ap-guangzhou:uin/100000000001:instance/ins-abcdefgh",
                    "qcs::cvm:*:uin/100000000001:instance/*"]}]}"#,
    r#"{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*",
        "condition":{"numeric_equal":{"qcs:mfa":1},"bool_equal":{"cvm:flag":"true"},
                     "null_equal":{"cvm:absent":true},"string_like":{"qcs:tag/env":"dev-*"},
                     "numeric_greater_than_equal_if_exist":{"cvm_system_disk_size":10}}}]}"#,
];

#[test]
fn cam_examples_compile() {
    for doc in CAM_VALID {
        let p = cam::compile("p", doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
        assert_eq!(p.grammar, Grammar::Cam);
        assert!(!p.statements.is_empty());
    }
}

#[test]
fn cam_compiles_to_the_internal_form() {
    let p = cam::compile("p", CAM_VALID[2]).unwrap();
    let st = &p.statements[0];
    assert_eq!(st.effect, Effect::Allow);
    assert!(st.actions.matches("cvm:RebootInstances"));
    assert!(
        st.actions.matches("CVM:rebootinstances"),
        "actions match case-insensitively"
    );
    assert!(!st.actions.matches("cvm:StopInstances"));
    let Predicate::All(conds) = &st.when else {
        panic!("{:?}", st.when)
    };
    let Predicate::Condition(c) = &conds[0] else {
        panic!()
    };
    assert_eq!(c.op, ConditionOp::StringEquals);
    assert_eq!(c.set, SetQualifier::ForAnyValue);
    assert_eq!(c.key, ContextKey::ResourceTag(None));
    assert_eq!(c.values, vec![Value::String("部门&研发部".into())]);

    let vpc = cam::compile("p", CAM_VALID[1]).unwrap();
    assert!(
        vpc.statements[0]
            .actions
            .matches("vpc:AcceptVpcPeeringConnection")
    );
    let Predicate::All(conds) = &vpc.statements[0].when else {
        panic!()
    };
    let Predicate::Condition(c) = &conds[0] else {
        panic!()
    };
    assert!(c.if_exists);
    assert_eq!(c.key, ContextKey::Other("vpc:region".into()));
}

/// A document of the one statement `body`: CAM's, RAM's.
fn cam_doc(body: &str) -> String {
    format!(r#"{{"version":"2.0","statement":[{body}]}}"#)
}
fn ram_doc(body: &str) -> String {
    format!(r#"{{"Version":"1","Statement":[{body}]}}"#)
}

/// A document that allows an action (`cvm:A`, `ecs:A`) on everything under `condition`.
fn cam_cond(condition: &str) -> String {
    let st = r#"{"effect":"allow","action":"cvm:A","resource":"*","condition":"#;
    cam_doc(&format!("{st}{condition}}}"))
}
fn ram_cond(condition: &str) -> String {
    let st = r#"{"Effect":"Allow","Action":"ecs:A","Resource":"*","Condition":"#;
    ram_doc(&format!("{st}{condition}}}"))
}

#[test]
fn cam_malformed_documents_have_kinds() {
    let (st, cond) = (cam_doc, cam_cond);
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "Syntax"),
        ("{".into(), "Syntax"),
        ("[]".into(), "NotAnObject"),
        ("\"x\"".into(), "NotAnObject"),
        (
            r#"{"version":"1.0","statement":[]}"#.into(),
            "InvalidVersion",
        ),
        (r#"{"version":2.0,"statement":[]}"#.into(), "InvalidVersion"),
        (r#"{"version":"2.0"}"#.into(), "MissingField"),
        (r#"{"version":"2.0","statement":{}}"#.into(), "WrongType"),
        (r#"{"version":"2.0","statement":[]}"#.into(), "Empty"),
        (
            r#"{"version":"2.0","statement":[],"extra":1}"#.into(),
            "UnknownField",
        ),
        (st("1"), "WrongType"),
        (st(r#"{"action":"cvm:A","resource":"*"}"#), "MissingField"),
        (
            st(r#"{"effect":"permit","action":"cvm:A","resource":"*"}"#),
            "InvalidEffect",
        ),
        (st(r#"{"effect":"allow","resource":"*"}"#), "MissingField"),
        (st(r#"{"effect":"allow","action":"cvm:A"}"#), "MissingField"),
        (
            st(r#"{"effect":"allow","action":"RebootInstances","resource":"*"}"#),
            "InvalidAction",
        ),
        (
            st(r#"{"effect":"allow","action":"CVM:Reboot","resource":"*"}"#),
            "InvalidAction",
        ),
        (
            st(r#"{"effect":"allow","action":"cvm:","resource":"*"}"#),
            "InvalidAction",
        ),
        (
            st(r#"{"effect":"allow","action":"cvm:a b","resource":"*"}"#),
            "InvalidAction",
        ),
        (
            st(r#"{"effect":"allow","action":[],"resource":"*"}"#),
            "Empty",
        ),
        (
            st(r#"{"effect":"allow","action":[1],"resource":"*"}"#),
            "WrongType",
        ),
        (
            st(r#"{"effect":"allow","action":{},"resource":"*"}"#),
            "WrongType",
        ),
        (
            st(r#"{"effect":"allow","action":"cvm:A","resource":"acs:ecs:*:*:instance/*"}"#),
            "InvalidResource",
        ),
        (
            st(r#"{"effect":"allow","action":"cvm:A","resource":"qcs::cvm:gz:bob:instance/x"}"#),
            "InvalidResource",
        ),
        (
            st(r#"{"effect":"allow","action":"cvm:A","resource":"qcs::cvm:gz:uin/1"}"#),
            "InvalidResource",
        ),
        (
            st(r#"{"effect":"allow","action":"cvm:A","resource":"*","principal":{"qcs":["x"]}}"#),
            "Unsupported",
        ),
        (
            st(r#"{"effect":"allow","not_action":"cvm:A","resource":"*"}"#),
            "Unsupported",
        ),
        (cond("[]"), "WrongType"),
        (
            cond(r#"{"ip_like":{"qcs:ip":"1.1.1.1"}}"#),
            "UnknownConditionOperator",
        ),
        (
            cond(r#"{"null_equal_if_exist":{"a:b":true}}"#),
            "UnknownConditionOperator",
        ),
        (cond(r#"{"ip_equal":"1.1.1.1"}"#), "WrongType"),
        (cond(r#"{"ip_equal":{}}"#), "Empty"),
        (
            cond(r#"{"ip_equal":{"qcs:ip ":"1.1.1.1"}}"#),
            "InvalidConditionKey",
        ),
        (
            cond(r#"{"ip_equal":{"qcs:ip":"1.1.1.1/40"}}"#),
            "InvalidConditionValue",
        ),
        (
            cond(r#"{"date_less_than":{"qcs:current_time":"2016-06-01T 00:01:00Z"}}"#),
            "InvalidConditionValue",
        ),
        (
            cond(r#"{"numeric_equal":{"qcs:mfa":"one"}}"#),
            "InvalidConditionValue",
        ),
        (
            cond(r#"{"bool_equal":{"a:b":"yes"}}"#),
            "InvalidConditionValue",
        ),
        (cond(r#"{"string_equal":{"a:b":[]}}"#), "Empty"),
        (
            cond(r#"{"string_equal":{"a:b":{"x":1}}}"#),
            "InvalidConditionValue",
        ),
    ];
    for (doc, kind) in &cases {
        let got = cam::compile("p", doc).map(|_| ()).map_err(|e| e.kind());
        assert_eq!(got, Err(*kind), "{doc}");
    }
    // A document whose version is missing but statements are there.
    assert_eq!(
        cam::compile("p", r#"{"statement":[]}"#).unwrap_err().kind(),
        "MissingField"
    );
}

#[test]
fn cam_bounds() {
    // The limit counts characters, not bytes: 6,144 CJK characters pass the size check.
    let pad = "研".repeat(limits::CAM_MAX_CHARS - 200);
    let doc = format!(
        r#"{{"version":"2.0","statement":[{{"effect":"allow","action":"cvm:A","resource":"*","condition":{{"string_equal":{{"a:b":"{pad}"}}}}}}]}}"#
    );
    assert!(doc.chars().count() <= limits::CAM_MAX_CHARS && doc.len() > limits::CAM_MAX_CHARS);
    cam::compile("p", &doc).unwrap();
    let over = " ".repeat(limits::CAM_MAX_CHARS + 1);
    assert_eq!(cam::compile("p", &over).unwrap_err().kind(), "TooLarge");

    let one = r#"{"effect":"allow","action":"a:b","resource":"*"}"#;
    let many = vec![one; limits::MAX_STATEMENTS + 1].join(",");
    let doc = format!(r#"{{"version":"2.0","statement":[{many}]}}"#);
    assert_eq!(cam::compile("p", &doc).unwrap_err().kind(), "TooMany");

    let actions = vec!["\"a:b\""; limits::MAX_VALUES + 1].join(",");
    let doc = format!(
        r#"{{"version":"2.0","statement":[{{"effect":"allow","action":[{actions}],"resource":"*"}}]}}"#
    );
    assert_eq!(cam::compile("p", &doc).unwrap_err().kind(), "TooMany");

    let keys: Vec<String> = (0..=limits::MAX_CONDITIONS)
        .map(|i| format!("\"k:{i}\":\"v\""))
        .collect();
    let doc = format!(
        r#"{{"version":"2.0","statement":[{{"effect":"allow","action":"a:b","resource":"*","condition":{{"string_equal":{{{}}}}}}}]}}"#,
        keys.join(",")
    );
    assert_eq!(cam::compile("p", &doc).unwrap_err().kind(), "TooMany");

    // Deep JSON nesting is refused by the parser's recursion limit, not the stack.
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    assert!(cam::compile("p", &deep[..limits::CAM_MAX_CHARS]).is_err());
}

/// The spec's example (specs/aliyun-ecs.md §7) and RAM docs' examples.
const RAM_VALID: &[&str] = &[
    r#"{"Version":"1","Statement":[{"Effect":"Allow",
        "Action":["ecs:DescribeInstances","ecs:Start*","ecs:StopInstance"],
        "Resource":["acs:ecs:cn-hangzhou:1234567890123456:instance/i-bp1abc","acs:ecs:*:*:keypair/*"],
        "Condition":{"StringEquals":{"ecs:tag/env":["dev"]},"IpAddress":{"acs:SourceIp":["10.0.0.0/8"]}}}]}"#,
    r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*",
        "Condition":{"StringEquals":{"acs:ResourceTag/team":["dev"]}}}]}"#,
    r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["oss:GetObject"],
        "Resource":["acs:oss:*:*:myphotos/hangzhou/2015/*"]},
        {"Effect":"Allow","Action":["oss:ListObjects"],"Resource":["acs:oss:*:*:myphotos"],
        "Condition":{"StringLike":{"oss:Prefix":"hangzhou/2015/*"}}}]}"#,
    r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*",
        "Condition":{"Bool":{"acs:MFAPresent":"true"}}}]}"#,
    r#"{"Version":"1","Statement":[{"Effect":"Allow","NotAction":["ram:*"],"Resource":"*",
        "Condition":{"DateLessThan":{"acs:CurrentTime":"2030-01-01T00:00:00+08:00"},
                     "DateGreaterThan":{"acs:CurrentTime":"2020-01-01T00:00:00Z"},
                     "NotIpAddress":{"acs:SourceIp":["192.0.2.0/24","2001:db8::/32"]},
                     "NumericLessThanEquals":{"ecs:count":5},
                     "StringNotEqualsIgnoreCase":{"acs:RequestTag/owner":"Bob"}}}]}"#,
];

#[test]
fn ram_examples_compile() {
    for doc in RAM_VALID {
        let p = ram::compile("p", doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
        assert_eq!(p.grammar, Grammar::Ram);
    }
    let p = ram::compile("p", RAM_VALID[4]).unwrap();
    assert!(matches!(p.statements[0].actions, ActionMatch::AllBut(_)));
    assert!(p.statements[0].actions.matches("ecs:RebootInstance"));
    assert!(!p.statements[0].actions.matches("ram:CreateUser"));
    let mfa = ram::compile("p", RAM_VALID[3]).unwrap();
    let Predicate::All(c) = &mfa.statements[0].when else {
        panic!()
    };
    let Predicate::Condition(c) = &c[0] else {
        panic!()
    };
    assert_eq!((c.op, &c.key), (ConditionOp::Bool, &ContextKey::MfaPresent));
    // Global keys are case-insensitive in RAM.
    let lower = RAM_VALID[3].replace("acs:MFAPresent", "acs:mfapresent");
    assert_eq!(ram::compile("p", &lower).unwrap(), mfa);
}

#[test]
fn ram_malformed_documents_have_kinds() {
    let (st, cond) = (ram_doc, ram_cond);
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "Syntax"),
        ("null".into(), "NotAnObject"),
        (r#"{"Version":"2","Statement":[]}"#.into(), "InvalidVersion"),
        (r#"{"Version":1,"Statement":[]}"#.into(), "InvalidVersion"),
        (r#"{"version":"1","Statement":[]}"#.into(), "UnknownField"),
        (r#"{"Statement":[]}"#.into(), "MissingField"),
        (r#"{"Version":"1","Statement":[]}"#.into(), "Empty"),
        (
            st(r#"{"Effect":"Maybe","Action":"ecs:A","Resource":"*"}"#),
            "InvalidEffect",
        ),
        (
            st(r#"{"Effect":"Allow","Action":"ecs:A","NotAction":"ecs:B","Resource":"*"}"#),
            "Unsupported",
        ),
        (
            st(r#"{"Effect":"Allow","Action":"ecs:A","NotResource":"*"}"#),
            "Unsupported",
        ),
        (
            st(r#"{"Effect":"Allow","Action":"ecs:A","Resource":"*","Principal":{"RAM":"*"}}"#),
            "Unsupported",
        ),
        (
            st(r#"{"Effect":"Allow","Action":"ecs:A","Resource":"*","Sid":"x"}"#),
            "UnknownField",
        ),
        (
            st(r#"{"Effect":"Allow","Action":"ecs:A","Resource":"qcs::cvm:gz:uin/1:instance/x"}"#),
            "InvalidResource",
        ),
        (
            st(r#"{"Effect":"Allow","Action":"ecs:A","Resource":"acs:ecs:cn:1"}"#),
            "InvalidResource",
        ),
        (
            cond(r#"{"ip_equal":{"acs:SourceIp":"1.1.1.1"}}"#),
            "UnknownConditionOperator",
        ),
        (
            cond(r#"{"Bool":{"acs:MFAPresent":"maybe"}}"#),
            "InvalidConditionValue",
        ),
        (
            cond(r#"{"DateLessThan":{"acs:CurrentTime":"yesterday"}}"#),
            "InvalidConditionValue",
        ),
        (
            cond(r#"{"IpAddress":{"acs:SourceIp":"10.0.0.0/8x"}}"#),
            "InvalidConditionValue",
        ),
        (
            cond(r#"{"NumericEquals":{"a:b":"NaN"}}"#),
            "InvalidConditionValue",
        ),
        (
            cond(r#"{"StringEquals":{"acs:Resource Tag":"x"}}"#),
            "InvalidConditionKey",
        ),
    ];
    for (doc, kind) in &cases {
        let got = ram::compile("p", doc).map(|_| ()).map_err(|e| e.kind());
        assert_eq!(got, Err(*kind), "{doc}");
    }
    // Effect values are case-insensitive (as both clouds' consoles accept them).
    ram::compile(
        "p",
        &st(r#"{"Effect":"allow","Action":"ecs:A","Resource":"*"}"#),
    )
    .unwrap();
    // The RAM bound counts bytes.
    let pad = "研".repeat(limits::RAM_MAX_BYTES / 3);
    let doc = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"ecs:A","Resource":"*","Condition":{{"StringEquals":{{"a:b":"{pad}"}}}}}}]}}"#
    );
    assert_eq!(ram::compile("p", &doc).unwrap_err().kind(), "TooLarge");
}

#[test]
fn errors_render_messages() {
    let e = ram::compile("p", r#"{"Version":"2","Statement":[]}"#).unwrap_err();
    assert_eq!(e.to_string(), "`2` is not a supported policy version");
    let e = cam::compile("p", &" ".repeat(7000)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the policy document is 7000 long, over the limit of 6144"
    );
}
