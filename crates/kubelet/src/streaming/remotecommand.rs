//! `exec` over a WebSocket: Kubernetes' `channel.k8s.io` stream protocols (v4 and v5), as
//! the kubelet serves them.
//!
//! Every binary message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 the
//! error channel (a `Status` in v4 and later: Success, or Failure with reason
//! `NonZeroExitCode` and the code as a cause, which `kubectl exec` exits with), 4 terminal
//! resize. v5 adds a close signal (`255, channel`) for the client to end its stdin. The
//! command's output is written when it has finished ([`crate::runtime::Container::exec`]
//! returns it whole), then the status, then the connection closes.

use serde_json::{Value, json};

/// The WebSocket subprotocols offered, newest first.
pub const PROTOCOL_V5: &str = "v5.channel.k8s.io";
pub const PROTOCOL_V4: &str = "v4.channel.k8s.io";
pub const PROTOCOLS: [&str; 2] = [PROTOCOL_V5, PROTOCOL_V4];

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5's "this channel is closed" signal.
pub const CLOSE: u8 = 255;

/// Largest payload per message: output is split so no single frame grows without bound.
const MAX_MESSAGE: usize = 32 * 1024;

/// What an exec asks for, from the query (`command` repeated, `container`, `stdin`, `stdout`,
/// `stderr`, `tty`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    pub command: Vec<String>,
    pub container: Option<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Kubernetes' query conversion: a present boolean is true unless it says false.
fn flag(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("f") || value.eq_ignore_ascii_case("false"))
}

impl ExecRequest {
    pub fn from_query(params: &[(String, String)]) -> Result<ExecRequest, String> {
        let mut req = ExecRequest::default();
        for (k, v) in params {
            match k.as_str() {
                "command" => req.command.push(v.clone()),
                "container" => req.container = Some(v.clone()).filter(|c| !c.is_empty()),
                "stdin" => req.stdin = flag(v),
                "stdout" => req.stdout = flag(v),
                "stderr" => req.stderr = flag(v),
                "tty" => req.tty = flag(v),
                _ => {}
            }
        }
        if req.command.is_empty() {
            return Err("you must specify at least one command for the container".into());
        }
        if !(req.stdin || req.stdout || req.stderr) {
            return Err("you must specify at least one of stdin, stdout, stderr".into());
        }
        Ok(req)
    }
}

/// The error channel's `Status` for a command that exited with `code`.
pub fn exit_status(command: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            command.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// The error channel's `Status` for an exec that could not run at all.
pub fn failure_status(message: &str) -> Value {
    json!({"metadata": {}, "status": "Failure", "message": message,
        "reason": "InternalError", "code": 500})
}

/// `data` as messages on `channel`.
pub fn messages(channel: u8, data: &[u8]) -> Vec<Vec<u8>> {
    data.chunks(MAX_MESSAGE)
        .map(|chunk| {
            let mut m = Vec::with_capacity(chunk.len() + 1);
            m.push(channel);
            m.extend_from_slice(chunk);
            m
        })
        .collect()
}

/// What a client message means.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    Stdin(&'a [u8]),
    /// v5: the client closed this channel (stdin: end of input).
    Close(u8),
    Resize,
    Other,
}

pub fn classify(message: &[u8]) -> Incoming<'_> {
    match message.split_first() {
        Some((&STDIN, rest)) => Incoming::Stdin(rest),
        Some((&CLOSE, rest)) => Incoming::Close(rest.first().copied().unwrap_or(STDIN)),
        Some((&RESIZE, _)) => Incoming::Resize,
        _ => Incoming::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_what_kubectl_sends() {
        let req = ExecRequest::from_query(&q(&[
            ("command", "sh"),
            ("command", "-c"),
            ("command", "exit 3"),
            ("container", "main"),
            ("stdout", "true"),
            ("stderr", "true"),
        ]))
        .expect("request");
        assert_eq!(req.command, vec!["sh", "-c", "exit 3"]);
        assert_eq!(req.container.as_deref(), Some("main"));
        assert!(req.stdout && req.stderr && !req.stdin && !req.tty);
        assert!(ExecRequest::from_query(&q(&[("stdout", "true")])).is_err());
        assert!(ExecRequest::from_query(&q(&[("command", "ls")])).is_err());
    }

    #[test]
    fn statuses_carry_the_exit_code_as_client_go_reads_it() {
        let ok = exit_status(&["true".into()], 0);
        assert_eq!(ok["status"], "Success");
        let failed = exit_status(&["false".into()], 3);
        assert_eq!(failed["reason"], "NonZeroExitCode");
        assert_eq!(failed["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(failed["details"]["causes"][0]["message"], "3");
    }

    #[test]
    fn channels() {
        let m = messages(STDOUT, &vec![7u8; MAX_MESSAGE + 1]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0][0], STDOUT);
        assert_eq!(m[1].len(), 2);
        assert_eq!(classify(&[0, 1, 2]), Incoming::Stdin(&[1, 2]));
        assert_eq!(classify(&[255, 0]), Incoming::Close(0));
        assert_eq!(classify(&[4, b'{']), Incoming::Resize);
        assert_eq!(classify(&[]), Incoming::Other);
    }
}
