use super::*;

/// The single document of `text`.
fn doc(text: &str) -> Node {
    let mut docs = parse(text).unwrap_or_else(|e| panic!("{e}\n--- input:\n{text}"));
    assert_eq!(docs.len(), 1, "documents in {text:?}");
    docs.remove(0)
}

/// The text of `key` in the single map document of `text`.
fn text_of(text: &str, key: &str) -> String {
    let d = doc(text);
    let v = d
        .get(key)
        .unwrap_or_else(|| panic!("no key {key} in {d:?}"));
    v.as_str()
        .unwrap_or_else(|| panic!("{key} is a {}", v.kind()))
        .to_string()
}

fn err(text: &str) -> YamlError {
    match parse(text) {
        Ok(d) => panic!("parsed {text:?} as {d:?}"),
        Err(e) => e,
    }
}

fn plain(text: &str) -> Value {
    Value::Scalar {
        text: text.into(),
        quoted: false,
    }
}

/// A sequence's scalar items as text ("~" for null).
fn items(node: &Node) -> Vec<String> {
    let seq = node
        .as_seq()
        .unwrap_or_else(|| panic!("not a sequence: {node:?}"));
    seq.iter()
        .map(|n| n.as_str().unwrap_or("~").to_string())
        .collect()
}

#[test]
fn comments_start_a_line_or_follow_whitespace() {
    let d = doc("# head\na: 1 # trailing\n  # indented\nb: x#y\nc: 'q # not'\n# tail\n");
    assert_eq!(d.get("a").unwrap().value, plain("1"));
    assert_eq!(d.get("b").unwrap().value, plain("x#y"));
    assert_eq!(d.get("c").unwrap().as_str(), Some("q # not"));
    assert_eq!(d.as_map().unwrap().len(), 3);
}

#[test]
fn block_maps_nest_at_any_indentation() {
    let d = doc("a:\n     b:\n       c: d\n     e: f\ng: h\n");
    assert_eq!(
        d.get("a")
            .unwrap()
            .get("b")
            .unwrap()
            .get("c")
            .unwrap()
            .as_str(),
        Some("d")
    );
    assert_eq!(d.get("a").unwrap().get("e").unwrap().as_str(), Some("f"));
    let keys: Vec<_> = d
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(keys, ["a", "g"]);
}

#[test]
fn keys_may_be_quoted_or_hold_spaces_and_values_may_be_empty() {
    let d = doc("\"quoted key\": 1\n'single': 2\nkey with spaces: 3\nempty:\ntilde: ~\nnull: null\nq: 'null'\n");
    assert_eq!(d.get("quoted key").unwrap().as_str(), Some("1"));
    assert_eq!(d.get("single").unwrap().as_str(), Some("2"));
    assert_eq!(d.get("key with spaces").unwrap().as_str(), Some("3"));
    assert!(d.get("empty").unwrap().is_null());
    assert!(d.get("tilde").unwrap().is_null());
    assert!(d.get("null").unwrap().is_null());
    assert_eq!(
        d.get("q").unwrap().value,
        Value::Scalar {
            text: "null".into(),
            quoted: true
        }
    );
    assert_eq!(
        d.get("empty").unwrap().line,
        4,
        "an empty value has its key's line"
    );
}

#[test]
fn block_sequences_under_a_key_indented_or_not() {
    let d = doc("a:\n- x\n- y\nb:\n    - z\nc: 1\n");
    assert_eq!(items(d.get("a").unwrap()), ["x", "y"]);
    assert_eq!(items(d.get("b").unwrap()), ["z"]);
    assert_eq!(d.get("c").unwrap().as_str(), Some("1"));
}

#[test]
fn sequence_items_may_start_maps_and_sequences() {
    let d = doc("- rule: r1\n  desc: d\n  tags:\n  - t\n-\n  list: l\n- - n1\n  - n2\n-\n- last\n");
    let seq = d.as_seq().unwrap();
    assert_eq!(seq.len(), 5);
    assert_eq!(seq[0].get("rule").unwrap().as_str(), Some("r1"));
    assert_eq!(seq[0].get("desc").unwrap().as_str(), Some("d"));
    assert_eq!(items(seq[0].get("tags").unwrap()), ["t"]);
    assert_eq!(seq[1].get("list").unwrap().as_str(), Some("l"));
    assert_eq!(items(&seq[2]), ["n1", "n2"]);
    assert!(seq[3].is_null());
    assert_eq!(seq[4].as_str(), Some("last"));
}

#[test]
fn line_numbers_are_where_nodes_start() {
    let d = doc("\n# c\n- a: 1\n  b:\n    - x\n\n- |\n  lit\n- [p,\n   q]\n");
    let seq = d.as_seq().unwrap();
    assert_eq!(
        (d.line, seq[0].line, seq[1].line, seq[2].line),
        (3, 3, 7, 9)
    );
    assert_eq!(seq[0].get("b").unwrap().line, 5);
    assert_eq!(seq[2].as_seq().unwrap()[1].line, 10);
}

#[test]
fn flow_sequences_nest_quote_and_span_lines() {
    let d =
        doc("a: [x, y, \"c d\", 'e']\nb: [[a, b], [c], []]\nc: [\n  p, # one\n  q,\n]\nd: [ ]\n");
    assert_eq!(items(d.get("a").unwrap()), ["x", "y", "c d", "e"]);
    let b = d.get("b").unwrap().as_seq().unwrap();
    assert_eq!(
        (items(&b[0]), items(&b[1]), items(&b[2]).len()),
        (vec!["a".into(), "b".into()], vec!["c".into()], 0)
    );
    assert_eq!(items(d.get("c").unwrap()), ["p", "q"]);
    assert_eq!(items(d.get("d").unwrap()).len(), 0);
}

#[test]
fn falco_style_wrapped_lists() {
    let d = doc("items: [dnf, '\"75-system-updat\"', rpm,\n          yum]\nother: [\n    a, b,\n    c\n    ]\n");
    assert_eq!(
        items(d.get("items").unwrap()),
        ["dnf", "\"75-system-updat\"", "rpm", "yum"]
    );
    assert_eq!(items(d.get("other").unwrap()), ["a", "b", "c"]);
}

#[test]
fn flow_maps_and_pairs() {
    let d = doc("m: {a: b, c, \"d\":e, n: {x: [1]}}\np: [k: v, w]\n");
    let m = d.get("m").unwrap();
    assert_eq!(m.get("a").unwrap().as_str(), Some("b"));
    assert!(m.get("c").unwrap().is_null());
    assert_eq!(m.get("d").unwrap().as_str(), Some("e"));
    assert_eq!(items(m.get("n").unwrap().get("x").unwrap()), ["1"]);
    let p = d.get("p").unwrap().as_seq().unwrap();
    assert_eq!(p[0].get("k").unwrap().as_str(), Some("v"));
    assert_eq!(p[1].as_str(), Some("w"));
}

#[test]
fn plain_scalars_fold_over_more_indented_lines() {
    let t = "condition: (a and\n             b) or\n   c\n\n   d # comment ends it\nnext: x:y http://h -1 a-b\n";
    assert_eq!(text_of(t, "condition"), "(a and b) or c\nd");
    assert_eq!(text_of(t, "next"), "x:y http://h -1 a-b");
    assert_eq!(items(&doc("- a\n  b\n- c\n")), ["a b", "c"]);
    assert_eq!(doc("top\nlevel\n").value, plain("top level"));
}

#[test]
fn single_quoted_scalars() {
    assert_eq!(text_of("a: 'it''s a \\n'\n", "a"), "it's a \\n");
    assert_eq!(
        text_of("a: 'multi  \n   line\n\n   para'\n", "a"),
        "multi line\npara"
    );
    assert_eq!(text_of("a: ''\n", "a"), "");
}

#[test]
fn double_quoted_escapes() {
    let t = r#"a: "q\" b\\ n\n t\t s\/ e\u00e9 x\x41 U\U0001F600 0\0 sp\ ""#;
    assert_eq!(
        text_of(t, "a"),
        "q\" b\\ n\n t\t s/ e\u{e9} xA U\u{1F600} 0\0 sp "
    );
    assert_eq!(
        text_of("a: \"one  \n  two \\\n  three\n\n  four\"\n", "a"),
        "one two three\nfour"
    );
    assert_eq!(text_of("a: \"é ü 漢\"\n", "a"), "é ü 漢");
}

#[test]
fn literal_block_scalars_and_chomping() {
    let t = "a: |\n  l1\n    l2\n\n  l4\nb: |-\n  x\n\n\nc: |+\n  y\n\n\nd: |\ne: x\n";
    assert_eq!(text_of(t, "a"), "l1\n  l2\n\nl4\n");
    assert_eq!(text_of(t, "b"), "x");
    assert_eq!(text_of(t, "c"), "y\n\n\n");
    assert_eq!(text_of(t, "d"), "");
    assert_eq!(text_of("a: |2\n    more\n  base\n", "a"), "  more\nbase\n");
    assert_eq!(
        text_of("a: |\n\n  after blank\n  # not a comment\n", "a"),
        "\nafter blank\n# not a comment\n"
    );
}

#[test]
fn folded_block_scalars() {
    let t = "a: >\n  one\n  two\n\n  para\n    more\n    indented\n  back\nb: >-\n  x\n  y\nc: >+\n  z\n\n";
    assert_eq!(text_of(t, "a"), "one two\npara\n  more\n  indented\nback\n");
    assert_eq!(text_of(t, "b"), "x y");
    assert_eq!(text_of(t, "c"), "z\n\n");
    let seq = doc("- >\n  f1\n  f2\n- |\n  l\n");
    assert_eq!(items(&seq), ["f1 f2\n", "l\n"]);
}

#[test]
fn documents() {
    let docs = parse("---\na: 1\n...\n# c\n---\n---\n--- text\n--- |\n  lit\n").unwrap();
    assert_eq!(docs.len(), 5);
    assert_eq!(docs[0].get("a").unwrap().as_str(), Some("1"));
    assert!(docs[1].is_null() && docs[2].is_null());
    assert_eq!((docs[1].line, docs[2].line), (5, 6));
    assert_eq!(docs[3].as_str(), Some("text"));
    assert_eq!(docs[4].as_str(), Some("lit\n"));
    assert_eq!(parse("").unwrap().len(), 0);
    assert_eq!(parse("# only a comment\n\n").unwrap().len(), 0);
    assert_eq!(parse("a: 1\n---\nb: 2\n").unwrap().len(), 2);
    assert_eq!(
        doc("\u{feff}a: 1\r\nb: 2\r\n").get("b").unwrap().as_str(),
        Some("2")
    );
}

#[test]
fn node_helpers() {
    let d = doc("t: true\nf: False\nq: 'true'\nn: 12\ns: [a]\n");
    assert_eq!(d.get("t").unwrap().as_bool(), Some(true));
    assert_eq!(d.get("f").unwrap().as_bool(), Some(false));
    assert_eq!(d.get("q").unwrap().as_bool(), None);
    assert_eq!(d.get("n").unwrap().as_bool(), None);
    assert_eq!(d.get("s").unwrap().kind(), "sequence");
    assert_eq!(d.kind(), "map");
    assert!(d.get("missing").is_none());
    assert!(d.get("s").unwrap().get("a").is_none());
}

/// `(input, line, start of message)` for inputs that must fail.
const ERRORS: &[(&str, u32, &str)] = &[
    ("a: 1\n   b: 2\n", 2, "mapping values are not allowed here"),
    ("a:\n  - x\n  y: 1\n", 3, "bad indentation of a map entry"),
    ("- \"a\"\n  - b\n", 2, "bad indentation of a sequence entry"),
    ("a: 'x'\n  b: 1\n", 2, "bad indentation of a map entry"),
    (
        "a: 1\n- b\n",
        2,
        "expected a map key, found a sequence entry",
    ),
    ("a: 1\nb\n", 2, "expected a map key"),
    (
        "- a\nb: 1\n",
        2,
        "unexpected content after the top-level node",
    ),
    (
        "x: 1\na: \"open\n\nmore\n",
        2,
        "unterminated double-quoted string",
    ),
    ("a: 'open\n", 1, "unterminated single-quoted string"),
    ("a: \"x\n---\n\"\n", 1, "unterminated double-quoted string"),
    ("a: [b,\n  c\n", 1, "unterminated flow sequence"),
    ("a: {b: c\n", 1, "unterminated flow map"),
    (
        "items: [a, b\n\n- rule: r\n",
        3,
        "expected ',' or ']' in the flow sequence opened on line 1",
    ),
    ("a: [x,,y]\n", 1, "unexpected ','"),
    ("\ta: 1\n", 1, "tabs are not allowed in indentation"),
    (
        "a:\n  b: 1\n\tc: 2\n",
        3,
        "tabs are not allowed in indentation",
    ),
    ("a: &x 1\n", 1, "anchors are not supported"),
    ("a: *x\n", 1, "aliases are not supported"),
    ("a: !!str 1\n", 1, "tags are not supported"),
    ("%YAML 1.2\n---\n", 1, "directives"),
    ("? a\n: b\n", 1, "complex keys"),
    ("a: [b]: c\n", 1, "collections as keys are not supported"),
    (
        "a: 1\nb: 2\na: 3\n",
        3,
        "duplicate key 'a' (first on line 1)",
    ),
    (
        "a: {b: 1,\n  b: 2}\n",
        2,
        "duplicate key 'b' (first on line 1)",
    ),
    ("a: b: c\n", 1, "mapping values are not allowed here"),
    ("a: 'x' y\n", 1, "unexpected text after the value"),
    ("a: |x\n", 1, "invalid block scalar header"),
    ("a: \"\\q\"\n", 1, "invalid escape '\\q'"),
    ("a: \"\\u12\"\n", 1, "invalid escape: expected 4 hex digits"),
    ("a: \"\\ud800\"\n", 1, "invalid unicode escape"),
    ("a: 1\nb: \x01\n", 2, "control character 0x01"),
    ("a: @x\n", 1, "'@' cannot start a plain scalar"),
    ("a: - b\n", 1, "a block sequence entry is not allowed here"),
    (
        "a: [- b]\n",
        1,
        "a block sequence entry is not allowed here",
    ),
    (
        "a: [|]\n",
        1,
        "block scalars are not allowed inside flow collections",
    ),
    (
        "a: |\n      \n  x\n",
        2,
        "a leading blank line of a block scalar",
    ),
    ("...\n--- a\nb\n... x\n", 4, "unexpected text after '...'"),
];

#[test]
fn errors_name_line_and_problem() {
    for &(input, line, msg) in ERRORS {
        let e = err(input);
        assert!(e.msg.starts_with(msg), "{input:?}: got {e}, want {msg:?}");
        assert_eq!(e.line, line, "{input:?}: got {e}");
        assert!(!e.msg.contains('\n'), "one-line message: {e}");
        assert_eq!(e.msg, e.msg.to_lowercase(), "lowercase message: {e}");
    }
    assert_eq!(
        err("a: \"x\n").to_string(),
        "line 1: unterminated double-quoted string"
    );
}

#[test]
fn depth_is_bounded_not_the_stack() {
    let bomb = "[".repeat(100_000);
    assert_eq!(err(&bomb).msg, "nesting deeper than 64 levels");
    let braces = format!("a: {}", "{b: ".repeat(100_000));
    assert_eq!(err(&braces).msg, "nesting deeper than 64 levels");
    let dashes = "- ".repeat(100_000);
    assert_eq!(err(&dashes).msg, "nesting deeper than 64 levels");
    let mut nested = String::new();
    for i in 0..100 {
        nested.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
    }
    let e = err(&nested);
    assert_eq!(
        (e.line, e.msg.as_str()),
        (65, "nesting deeper than 64 levels")
    );
    // 64 levels are fine, 65 are not.
    let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
    assert!(parse(&ok).is_ok());
    let over = format!("{}{}", "[".repeat(65), "]".repeat(65));
    assert!(parse(&over).is_err());
}

#[test]
fn invalid_utf8_reports_its_line() {
    let e = parse_bytes(b"a: 1\nb: 2\nc: \xff\xfe\n").unwrap_err();
    assert_eq!((e.line, e.msg.as_str()), (3, "invalid utf-8 (byte 0xff)"));
    let e = parse_bytes(b"\xc3").unwrap_err();
    assert_eq!(e.line, 1);
    assert_eq!(
        parse_bytes(b"a: \xc3\xa9\n").unwrap()[0]
            .get("a")
            .unwrap()
            .as_str(),
        Some("\u{e9}")
    );
}
