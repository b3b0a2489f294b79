use super::*;

fn f(name: &str) -> Operand {
    Operand::Field(FieldRef {
        name: name.into(),
        arg: None,
    })
}

fn chk(name: &str, op: Op, rhs: Rhs) -> Expr {
    Expr::Check(Check {
        lhs: f(name),
        op,
        rhs,
    })
}

#[test]
fn precedence_not_and_or() {
    let e = parse("a or not b and c").unwrap();
    assert_eq!(
        e,
        Expr::Or(vec![
            Expr::Macro("a".into()),
            Expr::And(vec![
                Expr::Not(Box::new(Expr::Macro("b".into()))),
                Expr::Macro("c".into())
            ])
        ])
    );
    // Pairs of not cancel.
    assert_eq!(parse("not not a").unwrap(), Expr::Macro("a".into()));
    assert_eq!(
        parse("not(a)").unwrap(),
        Expr::Not(Box::new(Expr::Macro("a".into())))
    );
}

#[test]
fn checks_and_values() {
    assert_eq!(
        parse("proc.name=bash").unwrap(),
        chk("proc.name", Op::Eq, Rhs::Value("bash".into()))
    );
    assert_eq!(
        parse("fd.name startswith '/etc/'").unwrap(),
        chk("fd.name", Op::StartsWith, Rhs::Value("/etc/".into()))
    );
    assert_eq!(
        parse("proc.name in (sh, \"a b\", 'c')").unwrap(),
        chk(
            "proc.name",
            Op::In,
            Rhs::List(vec!["sh".into(), "a b".into(), "c".into()])
        )
    );
    assert_eq!(
        parse("fd.name in ()").unwrap(),
        chk("fd.name", Op::In, Rhs::List(vec![]))
    );
    assert_eq!(
        parse("proc.pname exists").unwrap(),
        chk("proc.pname", Op::Exists, Rhs::None)
    );
    assert_eq!(
        parse("evt.rawres >= 0").unwrap(),
        chk("evt.rawres", Op::Ge, Rhs::Value("0".into()))
    );
    assert!(parse("evt.rawres >= x").is_err());
    let e = parse("proc.aname[2]=sshd").unwrap();
    let Expr::Check(c) = e else { panic!() };
    assert_eq!(
        c.lhs,
        Operand::Field(FieldRef {
            name: "proc.aname".into(),
            arg: Some("2".into())
        })
    );
    let e = parse("tolower(proc.name) = bash and proc.name = val(proc.pname)").unwrap();
    let Expr::And(v) = e else { panic!() };
    assert!(
        matches!(&v[0], Expr::Check(c) if matches!(&c.lhs, Operand::Transform(n, _) if n == "tolower"))
    );
    assert!(matches!(&v[1], Expr::Check(c) if matches!(&c.rhs, Rhs::Operand(_))));
}

#[test]
fn word_operators_need_a_blank() {
    // `and` glued to a word is not the keyword: it is left over.
    assert!(parse("a andb").is_err());
    assert!(parse("proc.name inx (a)").is_err());
    assert_eq!(
        parse("proc.name in(a)").unwrap(),
        chk("proc.name", Op::In, Rhs::List(vec!["a".into()]))
    );
}

#[test]
fn escapes_and_errors() {
    assert_eq!(
        parse(r#"proc.cmdline contains "a\"b\\c""#).unwrap(),
        chk("proc.cmdline", Op::Contains, Rhs::Value("a\"b\\c".into()))
    );
    assert!(parse(r#"proc.name = "a\qb""#).is_err());
    assert!(parse("proc.name = 'x").is_err());
    assert!(parse("(a").is_err());
    assert!(parse("a)").is_err());
    assert!(parse("proc.name").is_err());
    assert!(parse("").is_err());
    assert!(parse("proc.name in sh").is_err());
}

#[test]
fn depth_is_bounded() {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(depth_checks)
        .unwrap()
        .join()
        .unwrap();
}

fn depth_checks() {
    let deep = format!(
        "{}a{}",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert!(parse(&deep).is_ok());
    let too = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse(&too).unwrap_err().msg.contains("deeper"));
    let nots = "not ".repeat(10_000) + "a";
    assert!(parse(&nots).is_err());
}
