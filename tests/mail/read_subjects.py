"""Reads each header value given on stdin (a JSON list of strings) as the Subject of a message,
with Python's email package and its default policy (RFC 2047 and RFC 5322 as a mail reader
applies them), and prints what it reads as a JSON list."""
import email
import json
import sys
from email import policy

shown = []
for value in json.load(sys.stdin):
    message = email.message_from_string("Subject: " + value + "\n\n", policy=policy.default)
    shown.append(str(message["subject"]).strip())
json.dump(shown, sys.stdout)
