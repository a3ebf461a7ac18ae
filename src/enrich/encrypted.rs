//! What an encrypted SMTP session carried, from the lengths of its TLS records alone: how many
//! messages were accepted, for how many recipients, and how large they were.
//!
//! The transcript is a list of flights (consecutive records of one direction, with their
//! plaintext lengths). After the prologue (whatever the server sends before the client's first
//! flight: a greeting on 465, TLS 1.3 tickets; then the client's EHLO and the server's answer),
//! every server flight is read against the server software's reply lengths
//! (`smtp_replies.toml`): in a transaction, `mail + n * rcpt + data` bytes are the answers to a
//! MAIL, `n` RCPTs and DATA (all in one flight when the client pipelines, one per flight when
//! it does not); the client's next flight is the message; a reply of the `queued` length
//! accepts it. The client's flight before each reply bounds how many commands it can hold,
//! which settles lengths that two readings would fit.

use crate::protocols::smtp::{Confidence, Encrypted};
use crate::protocols::tls::Transcript;
use crate::rules::{ReplyProfile, ReplyProfiles};

use crate::direction::Direction;

/// Shortest commands: `MAIL FROM:<>\r\n`, `RCPT TO:<a@b>\r\n`, `DATA\r\n`.
const MAIL_COMMAND: u32 = 14;
const RCPT_COMMAND: u32 = 15;
const DATA_COMMAND: u32 = 6;
/// Server flights shorter than this are no SMTP reply (a TLS 1.3 close_notify is 2 bytes).
const LEAST_LINE: u32 = 5;
/// A message after replies that fit no reading is believed from this size on.
const LEAST_GUESSED_MESSAGE: u32 = 20;
/// Recipients one flight of replies is read as, at most.
const MOST_PIPELINED: u32 = 1000;

/// How a profile read one session.
#[derive(Debug, Default, PartialEq, Eq)]
struct Reading {
    transactions: u32,
    recipients: u32,
    message_bytes: u64,
    /// Server flights in a transaction that no combination of replies explains.
    unexplained: u32,
    /// The last message got no reply (the capture ended).
    unanswered: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between transactions: a flight that answers a MAIL starts one.
    Idle,
    /// After the MAIL reply: RCPT replies add recipients, the DATA reply ends it.
    Envelope { recipients: u32 },
    /// After the DATA reply: the client sends the message, the server accepts it or not.
    /// `guessed`: the replies before it fit no reading but were long enough to hold MAIL and
    /// DATA answers (pipelined with a refused recipient): only a `queued` reply confirms it.
    Message { recipients: u32, guessed: bool },
}

/// `(recipients, data)` such that `len` is the replies to `mail` (0 or 1) MAIL, `recipients`
/// RCPT and `data` (0 or 1) DATA, and a client flight of `client` bytes can hold those
/// commands; the reading with a DATA reply first.
fn replies(profile: &ReplyProfile, len: u32, mail: u32, client: u32) -> Option<(u32, u32)> {
    for data in [1, 0] {
        let mail_data_min = mail * profile.mail.start() + data * profile.data.start();
        let mail_data_max = mail * profile.mail.end() + data * profile.data.end();
        let Some(rest_max) = len.checked_sub(mail_data_min) else {
            continue;
        };
        let rest_min = len.saturating_sub(mail_data_max);
        let room = client.saturating_sub(mail * MAIL_COMMAND + data * DATA_COMMAND);
        let most = (room / RCPT_COMMAND).min(MOST_PIPELINED);
        let (rcpt_min, rcpt_max) = (*profile.rcpt.start(), *profile.rcpt.end());
        // The fewest recipients whose replies can fill what MAIL and DATA leave.
        let least = rest_min.div_ceil(rcpt_max);
        let fits = |n: u32| n * rcpt_min <= rest_max && n * rcpt_max >= rest_min;
        if let Some(n) = (least..=most).find(|&n| fits(n))
            && mail + n + data > 0
        {
            return Some((n, data));
        }
    }
    None
}

/// Reads `transcript` with `profile`.
fn read(transcript: &Transcript, profile: &ReplyProfile) -> Reading {
    let mut reading = Reading::default();
    let flights = transcript
        .flights
        .iter()
        .filter(|f| f.dir == Direction::Ctos || f.plaintext >= LEAST_LINE);
    // The prologue: the server's flights before the client's first, the client's first (EHLO)
    // and the server's answer to it.
    let mut flights = flights
        .skip_while(|f| f.dir == Direction::Stoc)
        .skip_while(|f| f.dir == Direction::Ctos)
        .skip(1)
        .peekable();
    let mut state = State::Idle;
    let mut client = 0u32;
    for flight in flights.by_ref() {
        if flight.dir == Direction::Ctos {
            client = client.saturating_add(flight.plaintext);
            continue;
        }
        let len = flight.plaintext;
        state = match state {
            State::Idle => match replies(profile, len, 1, client) {
                Some((recipients, 1)) => State::Message {
                    recipients,
                    guessed: false,
                },
                Some((recipients, _)) => State::Envelope { recipients },
                // Pipelined replies with a refusal among them: the accepted recipients are
                // not known, none is counted.
                None if len >= profile.mail.start() + profile.data.start()
                    && client >= MAIL_COMMAND + RCPT_COMMAND + DATA_COMMAND =>
                {
                    State::Message {
                        recipients: 0,
                        guessed: true,
                    }
                }
                // AUTH, RSET, NOOP, QUIT, a refused MAIL: no transaction.
                None => State::Idle,
            },
            State::Envelope { recipients } => match replies(profile, len, 0, client) {
                Some((more, 1)) => State::Message {
                    recipients: recipients + more,
                    guessed: false,
                },
                Some((more, _)) => State::Envelope {
                    recipients: recipients + more,
                },
                // A refused recipient (the reply names the address) or a refused DATA.
                None => {
                    reading.unexplained += 1;
                    State::Envelope { recipients }
                }
            },
            State::Message {
                recipients,
                guessed,
            } => {
                // A guessed transaction's message has headers at least; a SASL exchange
                // that ends in an empty line and a 235 of the same length has none.
                let least = if guessed { LEAST_GUESSED_MESSAGE } else { 1 };
                let queued = profile.queued.contains(&len) && client >= least;
                if queued {
                    reading.transactions += 1;
                    reading.recipients += recipients;
                    // Without the final ".\r\n".
                    reading.message_bytes += u64::from(client.saturating_sub(3));
                }
                if queued == guessed {
                    // A guessed transaction that was one, or a real one refused.
                    reading.unexplained += 1;
                }
                State::Idle
            }
        };
        client = 0;
    }
    if let State::Message {
        recipients,
        guessed: false,
    } = state
        && client > 0
    {
        reading.transactions += 1;
        reading.recipients += recipients;
        reading.message_bytes += u64::from(client.saturating_sub(3));
        reading.unanswered = true;
    }
    reading
}

/// The estimate for a session whose mail server is `server` (its `server_software` name),
/// or `None` when the transcript holds nothing after the prologue.
pub fn estimate(
    transcript: &Transcript,
    profiles: &ReplyProfiles,
    server: Option<&str>,
) -> Option<Encrypted> {
    let known = server.and_then(|name| profiles.of(name));
    let (profile, reading) = match known {
        Some(profile) => (profile, read(transcript, profile)),
        // The profile that finds the most transactions with the fewest unexplained flights;
        // the first in the file of those that tie.
        None => profiles
            .servers
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p, read(transcript, p)))
            .max_by_key(|(i, _, r)| {
                (
                    r.transactions,
                    std::cmp::Reverse(r.unexplained),
                    std::cmp::Reverse(*i),
                )
            })
            .map(|(_, p, r)| (p, r))?,
    };
    let exact = transcript
        .overhead
        .is_some_and(|o| o.block == 0 && o.fixed > 0);
    let confidence = if reading.unexplained > 0
        || reading.unanswered
        || transcript.incomplete
        || transcript.flights_dropped > 0
        || transcript.overhead.is_none()
    {
        Confidence::Low
    } else if known.is_none() || !exact {
        Confidence::Medium
    } else {
        Confidence::High
    };
    Some(Encrypted {
        transactions: reading.transactions,
        recipients: reading.recipients,
        message_bytes: reading.message_bytes,
        confidence,
        server_profile: profile.software.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direction::Direction::{Ctos, Stoc};
    use crate::protocols::tls::{Flight, Overhead};
    use crate::rules::Rules;

    fn profiles() -> ReplyProfiles {
        Rules::load(None).unwrap().replies
    }

    /// A transcript of these plaintext writes, one flight each.
    fn transcript(writes: &[(Direction, &str)]) -> Transcript {
        Transcript {
            overhead: Some(Overhead {
                fixed: 17,
                block: 0,
            }),
            flights: writes
                .iter()
                .map(|&(dir, text)| Flight {
                    dir,
                    records: 1,
                    plaintext: text.len() as u32,
                })
                .collect(),
            ..Transcript::default()
        }
    }

    const EHLO_REPLY: &str =
        "250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n";
    const MESSAGE: &str = "Subject: hi\r\n\r\nhello\r\n.\r\n";

    fn postfix_session(recipients: usize, pipelined: bool) -> Vec<(Direction, String)> {
        let mut w = vec![
            (Ctos, "EHLO pc.example.org\r\n".to_string()),
            (Stoc, EHLO_REPLY.to_string()),
        ];
        let rcpts: Vec<String> = (0..recipients)
            .map(|i| format!("RCPT TO:<user{i}@example.net>\r\n"))
            .collect();
        if pipelined {
            w.push((
                Ctos,
                format!("MAIL FROM:<a@example.org>\r\n{}DATA\r\n", rcpts.concat()),
            ));
            w.push((
                Stoc,
                format!(
                    "250 2.1.0 Ok\r\n{}354 End data with <CR><LF>.<CR><LF>\r\n",
                    "250 2.1.5 Ok\r\n".repeat(recipients)
                ),
            ));
        } else {
            w.push((Ctos, "MAIL FROM:<a@example.org>\r\n".into()));
            w.push((Stoc, "250 2.1.0 Ok\r\n".into()));
            for r in rcpts {
                w.push((Ctos, r));
                w.push((Stoc, "250 2.1.5 Ok\r\n".into()));
            }
            w.push((Ctos, "DATA\r\n".into()));
            w.push((Stoc, "354 End data with <CR><LF>.<CR><LF>\r\n".into()));
        }
        w.push((Ctos, MESSAGE.into()));
        w.push((Stoc, "250 2.0.0 Ok: queued as 4Xyz0123AB\r\n".into()));
        w
    }

    fn run(writes: &[(Direction, String)], server: Option<&str>) -> Encrypted {
        let borrowed: Vec<(Direction, &str)> =
            writes.iter().map(|(d, s)| (*d, s.as_str())).collect();
        estimate(&transcript(&borrowed), &profiles(), server).unwrap()
    }

    #[test]
    fn postfix_with_and_without_pipelining_from_1_to_50_recipients() {
        for recipients in [1, 2, 7, 14, 50] {
            for pipelined in [false, true] {
                let e = run(&postfix_session(recipients, pipelined), Some("Postfix"));
                assert_eq!(
                    (e.transactions, e.recipients, e.confidence),
                    (1, recipients as u32, Confidence::High),
                    "{recipients} recipients, pipelined {pipelined}"
                );
                assert_eq!(e.message_bytes, MESSAGE.len() as u64 - 3);
            }
        }
    }

    #[test]
    fn several_messages_auth_and_quit() {
        let mut w = postfix_session(3, true);
        w.insert(2, (Ctos, "AUTH PLAIN AGEAYg==\r\n".into()));
        w.insert(3, (Stoc, "235 2.7.0 Authentication successful\r\n".into()));
        w.extend(postfix_session(2, false).into_iter().skip(2));
        w.push((Ctos, "QUIT\r\n".into()));
        w.push((Stoc, "221 2.0.0 Bye\r\n".into()));
        let e = run(&w, Some("Postfix"));
        assert_eq!((e.transactions, e.recipients), (2, 5));
        assert_eq!(e.confidence, Confidence::High);
    }

    #[test]
    fn a_greeting_first_on_465_is_part_of_the_prologue() {
        let mut w = vec![(Stoc, "220 mx.example.net ESMTP Postfix\r\n".to_string())];
        w.extend(postfix_session(4, false));
        let e = run(&w, Some("Postfix"));
        assert_eq!((e.transactions, e.recipients), (1, 4));
    }

    #[test]
    fn exim_lengths_that_two_readings_fit_are_settled_by_the_client_flight() {
        // Exim's 354 is 56 bytes, four RCPT replies of 14 are too: "DATA" alone is no RCPT.
        let w = [
            (Ctos, "EHLO pc\r\n".to_string()),
            (Stoc, EHLO_REPLY.to_string()),
            (Ctos, "MAIL FROM:<a@b.c>\r\n".into()),
            (Stoc, "250 OK\r\n".into()),
            (Ctos, "RCPT TO:<x@y.z>\r\n".into()),
            (Stoc, "250 Accepted\r\n".into()),
            (Ctos, "DATA\r\n".into()),
            (
                Stoc,
                "354 Enter message, ending with \".\" on a line by itself\r\n".into(),
            ),
            (Ctos, MESSAGE.into()),
            (Stoc, "250 OK id=1tAbCd-000Xyz-Ab\r\n".into()),
        ];
        let e = run(&w, Some("Exim"));
        assert_eq!((e.transactions, e.recipients), (1, 1));
        // Unknown server: the profile that explains it best is found.
        let guessed = run(&w, None);
        assert_eq!((guessed.transactions, guessed.recipients), (1, 1));
        assert_eq!(guessed.server_profile, "Exim");
        assert_eq!(guessed.confidence, Confidence::Medium);
    }

    #[test]
    fn a_refused_recipient_lowers_the_confidence() {
        let mut w = postfix_session(2, false);
        w.insert(6, (Ctos, "RCPT TO:<nobody@example.net>\r\n".into()));
        w.insert(
            7,
            (
                Stoc,
                "550 5.1.1 <nobody@example.net>: Recipient address rejected\r\n".into(),
            ),
        );
        let e = run(&w, Some("Postfix"));
        assert_eq!((e.transactions, e.recipients), (1, 2));
        assert_eq!(e.confidence, Confidence::Low);
    }

    #[test]
    fn pipelined_replies_with_a_refusal_count_the_message_not_its_recipients() {
        let mut w = postfix_session(2, true);
        w[3].1 = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n554 5.7.1 <nobody@example.test>: Recipient address rejected: Access denied\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n".into();
        let e = run(&w, Some("Postfix"));
        assert_eq!((e.transactions, e.recipients), (1, 0), "a lower bound");
        assert_eq!(e.confidence, Confidence::Low);
        // A long reply that is no transaction (a refused MAIL, then QUIT) counts nothing.
        let w = [
            (Ctos, "EHLO pc\r\n".to_string()),
            (Stoc, EHLO_REPLY.to_string()),
            (Ctos, "MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n".into()),
            (
                Stoc,
                "553 5.7.1 <a@b.c>: Sender address rejected: not owned by user\r\n554 5.5.1 Error: no valid recipients\r\n".into(),
            ),
            (Ctos, "QUIT\r\n".into()),
            (Stoc, "221 2.0.0 Bye\r\n".into()),
        ];
        let e = run(&w, Some("Postfix"));
        assert_eq!(
            (e.transactions, e.recipients, e.confidence),
            (0, 0, Confidence::High)
        );
    }

    #[test]
    fn an_auth_exchange_is_no_transaction_even_when_its_replies_are_that_long() {
        // Postfix's 235 is 37 bytes, as long as "queued as" with an 11-character queue id.
        let mut w = postfix_session(1, false);
        w.insert(2, (Ctos, "AUTH LOGIN\r\n".into()));
        w.insert(
            3,
            (
                Stoc,
                "334 VXNlcm5hbWU6VXNlcm5hbWU6VXNlcm5hbWU6VXNlcm5hbWU6\r\n".into(),
            ),
        );
        w.insert(4, (Ctos, "dXNlcg==\r\n".into()));
        w.insert(5, (Stoc, "235 2.7.0 Authentication successful\r\n".into()));
        let e = run(&w, Some("Postfix"));
        assert_eq!(
            (e.transactions, e.recipients, e.confidence),
            (1, 1, Confidence::High)
        );
    }

    #[test]
    fn a_sasl_exchange_with_long_challenges_is_no_transaction() {
        // DIGEST-MD5 as curl does it: the server's second challenge follows a long client
        // response, and an empty line gets the 235.
        let mut w = postfix_session(3, false);
        let sasl = [
            (Ctos, "AUTH DIGEST-MD5\r\n".to_string()),
            (Stoc, format!("334 {}\r\n", "b".repeat(160))),
            (Ctos, format!("{}\r\n", "c".repeat(340))),
            (Stoc, format!("334 {}\r\n", "d".repeat(56))),
            (Ctos, "\r\n".into()),
            (Stoc, "235 2.7.0 Authentication successful\r\n".into()),
        ];
        w.splice(2..2, sasl);
        let e = run(&w, Some("Postfix"));
        assert_eq!((e.transactions, e.recipients), (1, 3));
    }

    #[test]
    fn nothing_after_the_prologue_is_no_transaction() {
        let w = [
            (Ctos, "EHLO pc\r\n".to_string()),
            (Stoc, EHLO_REPLY.to_string()),
            (Ctos, "QUIT\r\n".into()),
            (Stoc, "221 2.0.0 Bye\r\n".into()),
        ];
        let e = run(&w, Some("Postfix"));
        assert_eq!((e.transactions, e.recipients), (0, 0));
        assert!(estimate(&Transcript::default(), &ReplyProfiles::default(), None).is_none());
    }

    #[test]
    fn a_message_the_capture_cut_off_counts_with_low_confidence() {
        let mut w = postfix_session(3, true);
        w.pop();
        let e = run(&w, Some("Postfix"));
        assert_eq!(
            (e.transactions, e.recipients, e.confidence),
            (1, 3, Confidence::Low)
        );
    }
}
