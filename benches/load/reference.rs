//! The machine's yardstick: how long one RS256 signature takes on one core, with a parsed
//! 2048-bit key (aws-lc-rs, what the server signs with). A grant cannot cost less than one,
//! so each scenario's CPU time per operation is also given in signatures.

use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;

/// CPU microseconds of one RS256 signature of a token-sized message, measured over one second
/// of this thread's CPU time after a warm-up (CPU time, so that other work on the machine
/// does not skew it).
pub fn rs256_micros() -> f64 {
    let key = KeyPair::generate(KeySize::Rsa2048).expect("an RSA key");
    let rng = SystemRandom::new();
    let message = [b'x'; 400];
    let mut signature = vec![0; key.public_modulus_len()];
    let mut sign = || {
        key.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut signature)
            .expect("a signature")
    };
    for _ in 0..50 {
        sign();
    }
    let (started, mut count) = (thread_cpu_time(), 0u32);
    let spent = loop {
        for _ in 0..20 {
            sign();
        }
        count += 20;
        let spent = thread_cpu_time().saturating_sub(started);
        if spent >= Duration::from_secs(1) {
            break spent;
        }
    };
    spent.as_secs_f64() * 1e6 / f64::from(count)
}

/// This thread's CPU time (user + system, from /proc/thread-self/stat).
fn thread_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}
