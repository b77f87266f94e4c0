//! Commands the plugin prints for users to paste into a shell. A value from the cluster (a plan tier, a
//! credential prefix, a header name, a hostname, a token endpoint, an object's name) is chosen by whoever wrote
//! that object, and a pasted line must run exactly the command shown, never text its author slipped in.
//!
//! So each value is printed only if it is a plain token (a conservative charset, see `Kind`), and then quoted for
//! a POSIX shell with `shlex`; any other value is replaced by a placeholder such as `'<tier>'`, and a `#` note
//! (a comment, inert if pasted too) says why. Shell variables the user sets (`$API_KEY`, `$TOKEN`) stay
//! expandable: they are written in double quotes right after the quoted text, e.g. `'X-API-KEY: '"$API_KEY"`.

use std::fmt;

/// Which characters a value may have to be printed in a command.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Letters, digits, `.`, `_` and `-` (not first): names, tiers, prefixes, header names, hostnames.
    Word,
    /// An `https://` (or `http://`) URL of letters, digits and `. _ - ~ : / % +`: no query, no fragment.
    Url,
}

impl Kind {
    fn admits(self, text: &str) -> bool {
        let allowed = |c: char| {
            c.is_ascii_alphanumeric()
                || matches!(c, '.' | '_' | '-')
                || (self == Self::Url && matches!(c, '~' | ':' | '/' | '%' | '+'))
        };
        let shape = match self {
            Self::Word => !text.starts_with('-'),
            Self::Url => text.starts_with("https://") || text.starts_with("http://"),
        };
        shape && !text.is_empty() && text.len() <= 2048 && text.chars().all(allowed)
    }

    fn rule(self) -> &'static str {
        match self {
            Self::Word => "only letters, digits, '.', '_' and '-' are printed",
            Self::Url => "only http(s) URLs of letters, digits and . _ - ~ : / % + are printed",
        }
    }
}

/// A value from the cluster, with the placeholder that stands for it when it is not plain (or not known).
#[derive(Clone, Copy, Debug)]
pub struct Value<'a> {
    text: Option<&'a str>,
    kind: Kind,
    placeholder: &'static str,
    what: &'static str,
}

impl<'a> Value<'a> {
    /// `text`, described as `what` (e.g. "plan tier") in the note when it is not plain.
    pub fn new(text: &'a str, kind: Kind, placeholder: &'static str, what: &'static str) -> Self {
        Self { text: Some(text), kind, placeholder, what }
    }

    /// A value not known yet: the placeholder, with no note (it says what to put there).
    pub fn unknown(placeholder: &'static str) -> Self {
        Self { text: None, kind: Kind::Word, placeholder, what: "" }
    }

    pub fn name(text: &'a str) -> Self {
        Self::new(text, Kind::Word, "<name>", "name")
    }

    pub fn namespace(text: &'a str) -> Self {
        Self::new(text, Kind::Word, "<namespace>", "namespace")
    }

    /// The text to print and, for a value that is not plain, the note that says why it is not there.
    fn resolve(self) -> (&'a str, Option<String>) {
        match self.text {
            Some(text) if self.kind.admits(text) => (text, None),
            Some(_) => (
                self.placeholder,
                Some(format!(
                    "{} stands for the {}, which is not printed here: it has characters a shell would act on ({}); type it in yourself",
                    self.placeholder,
                    self.what,
                    self.kind.rule()
                )),
            ),
            None => (self.placeholder, None),
        }
    }
}

/// One piece of a shell word.
#[derive(Clone, Copy, Debug)]
pub enum Part<'a> {
    /// The plugin's own text.
    Text(&'static str),
    Value(Value<'a>),
    /// A shell variable the user sets, expanded when the line is pasted.
    Var(&'static str),
}

/// A command line ready to paste, with the notes about values it does not show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    line: String,
    notes: Vec<String>,
}

impl Command {
    /// A command that starts with the plugin's own shell text, e.g. `kubectl apiportal request`.
    pub fn new(syntax: &'static str) -> Self {
        Self { line: syntax.to_owned(), notes: Vec::new() }
    }

    /// `kubectl apiportal` followed by `syntax`.
    pub fn apiportal(syntax: &'static str) -> Self {
        Self::new("kubectl apiportal").raw(syntax)
    }

    /// More of the plugin's own shell text (words, flags, operators), after a space.
    pub fn raw(mut self, syntax: &'static str) -> Self {
        self.line.push(' ');
        self.line.push_str(syntax);
        self
    }

    /// One word that is exactly `value`.
    pub fn arg(self, value: Value<'_>) -> Self {
        self.word(&[Part::Value(value)])
    }

    /// `flag` and then `value`.
    pub fn flag(self, flag: &'static str, value: Value<'_>) -> Self {
        self.raw(flag).arg(value)
    }

    /// `NAMESPACE/NAME` as one word.
    pub fn reference(self, namespace: &str, name: &str) -> Self {
        self.word(&[Part::Value(Value::namespace(namespace)), Part::Text("/"), Part::Value(Value::name(name))])
    }

    /// One shell word made of `parts`: runs of text quoted together, variables in double quotes.
    pub fn word(mut self, parts: &[Part<'_>]) -> Self {
        self.line.push(' ');
        let mut text = String::new();
        let mut wrote = false;
        for part in parts {
            match part {
                Part::Text(t) => text.push_str(t),
                Part::Value(v) => {
                    let (shown, note) = v.resolve();
                    text.push_str(shown);
                    if let Some(note) = note.filter(|n| !self.notes.contains(n)) {
                        self.notes.push(note);
                    }
                }
                Part::Var(name) => {
                    quote_into(&mut self.line, &std::mem::take(&mut text));
                    self.line.push_str(&format!("\"${name}\""));
                    wrote = true;
                }
            }
        }
        if !wrote && text.is_empty() {
            self.line.push_str("''");
        }
        quote_into(&mut self.line, &text);
        self
    }

    /// Notes of several commands, each once.
    pub fn all_notes<'c>(commands: impl IntoIterator<Item = &'c Command>) -> Vec<&'c str> {
        let mut notes: Vec<&str> = Vec::new();
        for note in commands.into_iter().flat_map(|c| c.notes.iter()) {
            if !notes.contains(&note.as_str()) {
                notes.push(note);
            }
        }
        notes
    }
}

/// Appends `text` quoted for a POSIX shell (nothing for no text).
fn quote_into(line: &mut String, text: &str) {
    if !text.is_empty() {
        // Only the plugin's own text and plain values reach here: neither holds a NUL, the one thing shlex refuses.
        line.push_str(&shlex::try_quote(text).expect("no NUL in a command's text"));
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

/// Where an API takes its credential, for `curl`: `host` is the API's hostname (unknown before the bridge
/// recorded it), `var` the shell variable holding the credential.
pub fn call_api(
    credentials: Option<&apiportal_core::resources::authpolicy::Credentials>,
    host: Option<&str>,
    var: &'static str,
) -> Command {
    use apiportal_core::resources::authpolicy::{CredentialLocation, Credentials};
    let host = match host {
        Some(host) => Value::new(host, Kind::Word, "<api-hostname>", "API's hostname"),
        None => Value::unknown("<api-hostname>"),
    };
    let url = [Part::Text("https://"), Part::Value(host), Part::Text("/")];
    let curl = Command::new("curl");
    match Credentials::location(credentials) {
        CredentialLocation::Header { name, prefix } => {
            let name = Value::new(name, Kind::Word, "<header-name>", "header name");
            let header = match prefix {
                Some(prefix) => {
                    let prefix = Value::new(prefix, Kind::Word, "<prefix>", "credential prefix");
                    curl.raw("-H").word(&[
                        Part::Value(name),
                        Part::Text(": "),
                        Part::Value(prefix),
                        Part::Text(" "),
                        Part::Var(var),
                    ])
                }
                None => curl.raw("-H").word(&[Part::Value(name), Part::Text(": "), Part::Var(var)]),
            };
            header.word(&url)
        }
        CredentialLocation::Query { name } => {
            let name = Value::new(name, Kind::Word, "<parameter>", "query parameter's name");
            curl.word(&[url[0], url[1], url[2], Part::Text("?"), Part::Value(name), Part::Text("="), Part::Var(var)])
        }
        CredentialLocation::Cookie { name } => {
            let name = Value::new(name, Kind::Word, "<cookie>", "cookie's name");
            curl.raw("--cookie").word(&[Part::Value(name), Part::Text("="), Part::Var(var)]).word(&url)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_print_and_variables_stay_expandable() {
        let cmd = Command::apiportal("request")
            .reference("shop", "toys")
            .flag("--plan", Value::new("gold", Kind::Word, "<tier>", "plan tier"));
        assert_eq!(cmd.line.as_str(), "kubectl apiportal request shop/toys --plan gold");
        assert!(cmd.notes.is_empty());
        let cmd = Command::new("curl").raw("-H").word(&[Part::Text("X-API-KEY: "), Part::Var("API_KEY")]);
        assert_eq!(cmd.line.as_str(), "curl -H 'X-API-KEY: '\"$API_KEY\"");
        let url = Value::new("https://sso.example.com/realms/a%20b/token", Kind::Url, "<token-endpoint>", "x");
        assert_eq!(Command::new("curl").arg(url).line.as_str(), "curl 'https://sso.example.com/realms/a%20b/token'");
    }

    #[test]
    fn values_that_are_not_plain_become_placeholders_with_a_note() {
        let hostile = [
            ("APIKEY\" $(touch pwned) \"", Kind::Word),
            ("gold;`touch pwned`", Kind::Word),
            ("--help", Kind::Word),
            ("X-Key$(id)", Kind::Word),
            ("", Kind::Word),
            ("ünïcode", Kind::Word),
            ("tab\there", Kind::Word),
            ("https://sso.example.com/t'$(touch pwned)'", Kind::Url),
            ("https://sso.example.com/t?a=b&c=d", Kind::Url),
            ("file:///etc/passwd", Kind::Url),
            ("javascript:alert(1)", Kind::Url),
        ];
        for (text, kind) in hostile {
            let cmd = Command::new("echo").arg(Value::new(text, kind, "<x>", "thing"));
            assert_eq!(cmd.line.as_str(), "echo '<x>'", "{text:?}");
            assert_eq!(cmd.notes.len(), 1);
            assert!(cmd.notes[0].starts_with("<x> stands for the thing"), "{:?}", cmd.notes);
            if !text.is_empty() {
                assert!(!cmd.notes[0].contains(text), "the note never repeats the value");
            }
        }
    }

    #[test]
    fn a_printed_command_splits_into_exactly_the_intended_words() {
        let cmd = call_api(None, Some("toys.example.com"), "API_KEY");
        assert_eq!(cmd.line.as_str(), "curl -H 'Authorization: Bearer '\"$API_KEY\" https://toys.example.com/");
        assert_eq!(
            shlex::split(cmd.line.as_str()).unwrap(),
            ["curl", "-H", "Authorization: Bearer $API_KEY", "https://toys.example.com/"]
        );
        let cmd = call_api(None, None, "TOKEN");
        assert_eq!(cmd.line.as_str(), "curl -H 'Authorization: Bearer '\"$TOKEN\" 'https://<api-hostname>/'");
        assert!(cmd.notes.is_empty(), "an unknown host needs no note: the placeholder says it");
    }
}
