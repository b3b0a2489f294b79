//! The exporter's flags and listen addresses.

use super::*;

#[test]
fn flags_and_config_keys() {
    use crate::cli::{run_args_with_config, Cli};
    use argh::FromArgs;
    let conf = crate::testing::scratch("prom.toml");
    let prom = crate::testing::scratch("k.prom");
    std::fs::write(
        &conf,
        format!(
            "prometheus = 9376\nprometheus_names = \"strict\"\n\
             prometheus_web_config = \"/etc/kestrel/web.yml\"\n\
             output = [\"prometheus-textfile:{}\"]\n",
            prom.display()
        ),
    )
    .unwrap();
    let r = run_args_with_config(&["--config", conf.to_str().unwrap()]).unwrap();
    assert_eq!(r.prometheus, Some("127.0.0.1:9376".parse().unwrap()));
    assert_eq!(r.prometheus_names, Some(true));
    assert_eq!(
        r.prometheus_web_config.as_deref(),
        Some("/etc/kestrel/web.yml")
    );
    let cfg = PrometheusConfig {
        listen: None,
        strict_names: true,
        web_config: None,
    };
    let p = Prometheus::from_config(cfg, &r.output).unwrap().unwrap();
    assert_eq!(p.textfiles.len(), 1);
    assert!(p.server.is_none());
    assert!(Prometheus::from_config(PrometheusConfig::default(), &[])
        .unwrap()
        .is_none());
    assert!(Cli::from_args(&["kestrel"], &["run", "--prometheus", "nope"]).is_err());
    assert!(Cli::from_args(&["kestrel"], &["run", "--prometheus-names", "loose"]).is_err());
}

#[test]
fn listen_addresses() {
    for (given, want) in [
        ("9376", "127.0.0.1:9376"),
        (":9376", "127.0.0.1:9376"),
        ("0.0.0.0:80", "0.0.0.0:80"),
        ("[::1]:9376", "[::1]:9376"),
    ] {
        assert_eq!(parse_listen(given), Ok(want.parse().unwrap()), "{given}");
    }
    for bad in [
        "",
        ":",
        "99999",
        "localhost:9376",
        "1.2.3.4",
        ":-1",
        "::1:80",
    ] {
        assert!(parse_listen(bad).is_err(), "{bad}");
    }
}
