//! The flags of the bench programs (`--name value` or `--name=value`),
//! shared by our binary and the tonic peer so both accept the same command
//! lines.

use std::collections::HashMap;
use std::time::Duration;

/// Parsed `--flag value` pairs and bare `--switch`es.
#[derive(Clone, Debug, Default)]
pub struct Args {
    values: HashMap<String, String>,
}

/// A flag that is missing, unknown or does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgError(pub String);

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

impl Args {
    /// Parses `args`; `switches` are the flags that take no value, and every
    /// flag must be in `known` (or `switches`).
    pub fn parse(args: &[String], known: &[&str], switches: &[&str]) -> Result<Args, ArgError> {
        let mut values = HashMap::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(ArgError(format!("unexpected argument {arg:?}")));
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag, None),
            };
            if switches.contains(&name) {
                values.insert(name.to_string(), inline.unwrap_or_else(|| "true".into()));
                continue;
            }
            if !known.contains(&name) {
                return Err(ArgError(format!("unknown flag --{name}")));
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| ArgError(format!("--{name} needs a value")))?,
            };
            values.insert(name.to_string(), value);
        }
        Ok(Args { values })
    }

    /// The raw value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether the switch `name` was given (and not `=false`).
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v != "false")
    }

    /// `name` parsed as `T`, or `default` when absent.
    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ArgError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| ArgError(format!("--{name} {v:?} is not a valid number"))),
        }
    }

    /// `name` in seconds (fractions allowed), or `default`.
    pub fn secs(&self, name: &str, default: f64) -> Result<Duration, ArgError> {
        let s: f64 = self.num(name, default)?;
        if !s.is_finite() || s < 0.0 {
            return Err(ArgError(format!(
                "--{name} must be a non-negative number of seconds"
            )));
        }
        Ok(Duration::from_secs_f64(s))
    }
}

/// The client flags of the contract, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientArgs {
    /// `HOST:PORT`.
    pub target: String,
    /// `"unary"` or `"streaming"`.
    pub rpc: String,
    /// Outstanding calls or streams.
    pub concurrency: u32,
    /// Connections.
    pub connections: u32,
    /// The measured window.
    pub duration: Duration,
    /// Warm-up before it.
    pub warmup: Duration,
    /// Request payload bytes.
    pub req_size: u32,
    /// Response payload bytes.
    pub resp_size: u32,
}

/// The flag names of the `client` subcommand.
pub const CLIENT_FLAGS: [&str; 8] = [
    "target",
    "rpc",
    "concurrency",
    "connections",
    "duration",
    "warmup",
    "req-size",
    "resp-size",
];

impl ClientArgs {
    /// Parses the `client` subcommand's flags (defaults: unary, 1 call, 1
    /// connection, 10 s after 2 s of warm-up, 0 B both ways).
    ///
    /// ```
    /// use mio_grpc_bench::args::ClientArgs;
    /// let args: Vec<String> = ["--target", "127.0.0.1:50051", "--concurrency", "64"]
    ///     .iter().map(|s| s.to_string()).collect();
    /// let parsed = ClientArgs::parse(&args).unwrap();
    /// assert_eq!((parsed.rpc.as_str(), parsed.concurrency), ("unary", 64));
    /// ```
    pub fn parse(args: &[String]) -> Result<ClientArgs, ArgError> {
        let a = Args::parse(args, &CLIENT_FLAGS, &[])?;
        let target = a
            .get("target")
            .ok_or_else(|| ArgError("--target HOST:PORT is required".into()))?
            .to_string();
        let rpc = a.get("rpc").unwrap_or("unary").to_string();
        if rpc != "unary" && rpc != "streaming" {
            return Err(ArgError(format!(
                "--rpc must be unary or streaming, not {rpc:?}"
            )));
        }
        let concurrency = a.num("concurrency", 1u32)?;
        let connections = a.num("connections", 1u32)?;
        if concurrency == 0 || connections == 0 {
            return Err(ArgError(
                "--concurrency and --connections must be at least 1".into(),
            ));
        }
        let req_size = a.num("req-size", 0u32)?;
        let resp_size = a.num("resp-size", 0u32)?;
        if req_size > (1 << 30) || resp_size > (1 << 30) {
            return Err(ArgError(
                "--req-size and --resp-size are capped at 1 GiB".into(),
            ));
        }
        Ok(ClientArgs {
            target,
            rpc,
            concurrency,
            connections,
            duration: a.secs("duration", 10.0)?,
            warmup: a.secs("warmup", 2.0)?,
            req_size,
            resp_size,
        })
    }

    /// The report's description of a run with these flags by `client`.
    pub fn spec(&self, client: &str) -> crate::report::RunSpec {
        crate::report::RunSpec {
            client: client.to_string(),
            target: self.target.clone(),
            rpc: self.rpc.clone(),
            concurrency: self.concurrency,
            connections: self.connections,
            req_size: self.req_size,
            resp_size: self.resp_size,
        }
    }

    /// These flags as a command line (the inverse of [`ClientArgs::parse`]).
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "--target".into(),
            self.target.clone(),
            "--rpc".into(),
            self.rpc.clone(),
            "--concurrency".into(),
            self.concurrency.to_string(),
            "--connections".into(),
            self.connections.to_string(),
            "--duration".into(),
            self.duration.as_secs_f64().to_string(),
            "--warmup".into(),
            self.warmup.as_secs_f64().to_string(),
            "--req-size".into(),
            self.req_size.to_string(),
            "--resp-size".into(),
            self.resp_size.to_string(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn client_flags_parse_and_round_trip() {
        let a = ClientArgs::parse(&strings(&[
            "--target",
            "127.0.0.1:9",
            "--rpc=streaming",
            "--concurrency",
            "64",
            "--connections",
            "2",
            "--duration",
            "1.5",
            "--warmup",
            "0",
            "--req-size",
            "1024",
            "--resp-size",
            "7",
        ]))
        .unwrap();
        assert_eq!(a.rpc, "streaming");
        assert_eq!(a.concurrency, 64);
        assert_eq!(a.duration, Duration::from_millis(1500));
        assert_eq!(a.req_size, 1024);
        assert_eq!(ClientArgs::parse(&a.to_args()).unwrap(), a);
    }

    #[test]
    fn bad_flags_are_errors_not_panics() {
        assert!(ClientArgs::parse(&strings(&["--rpc", "unary"])).is_err());
        assert!(ClientArgs::parse(&strings(&["--target", "x", "--bogus", "1"])).is_err());
        assert!(ClientArgs::parse(&strings(&["--target", "x", "--rpc", "bidi"])).is_err());
        assert!(ClientArgs::parse(&strings(&["--target", "x", "--concurrency", "0"])).is_err());
        assert!(ClientArgs::parse(&strings(&["--target", "x", "--duration", "-1"])).is_err());
        assert!(ClientArgs::parse(&strings(&["--target", "x", "--warmup"])).is_err());
        assert!(ClientArgs::parse(&strings(&["--target", "x", "stray"])).is_err());
    }
}
