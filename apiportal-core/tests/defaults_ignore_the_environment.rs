//! `kubectl apiportal install` renders the bridge's Deployment from the bridge's defaults: what the person running
//! it has in their own environment (say `APIPORTAL_LOG_FORMAT=json` for a bridge run locally) must not change
//! what it renders. Its own test binary: it sets environment variables, which would race other tests.

use apiportal_core::{
    bridge_args::{Args, LogFormat},
    install::{InstallOptions, bridge_args},
};

#[test]
fn the_defaults_and_the_rendered_deployment_ignore_the_callers_environment() {
    let rendered_before = bridge_args(&InstallOptions::default());
    let defaults_before = Args::defaults();
    for (name, value) in [
        ("APIPORTAL_LOG_FORMAT", "json"),
        ("APIPORTAL_LISTEN", "127.0.0.1:9999"),
        ("APIPORTAL_ENFORCEMENT_NAMESPACE", "somewhere-else"),
        ("APIPORTAL_EXPIRY_WARNING", "1d"),
        ("APIPORTAL_FETCH_ALLOW_CIDR", "10.0.0.0/8"),
    ] {
        // SAFETY: this test binary runs this one test, on one thread; nothing else reads the environment meanwhile.
        unsafe { std::env::set_var(name, value) };
    }
    // The bridge itself does read them: the test would prove nothing otherwise.
    let from_environment = Args::try_from_command_line(["apiportal-bridge"], |_| None).unwrap();
    assert_eq!(from_environment.log_format, LogFormat::Json);
    assert_eq!(from_environment.enforcement_namespace, "somewhere-else");
    assert_eq!(from_environment.fetch_allow_cidrs, ["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()]);

    assert_eq!(Args::defaults(), defaults_before, "the defaults do not depend on the environment");
    assert_eq!(Args::defaults().log_format, LogFormat::Human);
    let rendered = bridge_args(&InstallOptions::default());
    assert_eq!(rendered, rendered_before, "install renders the same Deployment whatever the caller's environment");
    assert!(rendered.contains(&"--log-format=json".to_owned()), "{rendered:?}");
}
