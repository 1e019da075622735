//! Streaming subresources the kubelet serves over upgraded connections: `port-forward`
//! ([`portforward`], SPDY/3.1 framing in [`spdy`]) and `exec` ([`remotecommand`]), both over
//! WebSockets as kubectl 1.30+ speaks them.

pub mod portforward;
pub mod remotecommand;
pub mod spdy;
