#!/usr/bin/env python3
"""Write the load benchmark's test messages (deterministic, clean mail).

    make-messages.py OUTDIR [docx|pdf|none]

OUTDIR/message-10k.eml  a ~10 KB MIME message as a school sends and receives
                        all day: multipart/mixed with multipart/alternative
                        (text/plain + text/html newsletter prose) and a small
                        attachment: a Word letter (fixtures/files/report.docx,
                        the default), a PDF letter (fixtures/files/letter.pdf)
                        or none.
OUTDIR/message-1m.eml   a ~1 MB message: the same text parts and a ~750 KB
                        base64 photo (image/jpeg), for the memory phase.

Both must scan as "pass" with the test school's config (no findings), so the
benchmark measures the normal path: full scan, then re-injection.
"""

import base64
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

WORDS = (
    "the school term pupils parents class trip museum library reading science "
    "project garden football netball choir concert assembly lunch menu homework "
    "spelling maths history geography art music drama sports day uniform "
    "reminder please thank you for your support this week next month year group "
    "teachers visit team county finals results well done everyone who helped "
    "volunteers fundraising cake sale raised for new books playground equipment "
    "weather forecast coats wellies forest school outdoor learning morning "
    "afternoon session club after school activities timetable changes open "
    "evening welcome new families photographs display hall celebration"
).split()


def prose(rng, nbytes):
    out, line, total = [], [], 0
    while total < nbytes:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16)))
        sentence = sentence[0].upper() + sentence[1:] + "."
        line.append(sentence)
        if sum(len(s) + 1 for s in line) > 60:
            text = " ".join(line)
            out.append(text)
            total += len(text) + 2
            line = []
    return out


def wrap76(data):
    b = base64.b64encode(data).decode()
    return "\r\n".join(b[i : i + 76] for i in range(0, len(b), 76))


def message(rng, attachment_name, attachment_type, attachment, subject, msgid):
    paras = prose(rng, 3300)
    text = "\r\n".join(paras)
    html = "".join(f"<p>{p}</p>\r\n" for p in prose(rng, 3800))
    parts = [
        "From: \"Riverside Sports Trust\" <news@riverside-sports.example.org>",
        "To: office@oakfield.sch.uk",
        f"Subject: {subject}",
        "Date: Tue, 10 Mar 2026 09:15:00 +0000",
        f"Message-ID: <{msgid}@riverside-sports.example.org>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="=_mixed_1"',
        "",
        "This is a multi-part message in MIME format.",
        "",
        "--=_mixed_1",
        'Content-Type: multipart/alternative; boundary="=_alt_1"',
        "",
        "--=_alt_1",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 7bit",
        "",
        text,
        "",
        "--=_alt_1",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: 7bit",
        "",
        "<html><body><h1>" + subject + "</h1>\r\n" + html + "</body></html>",
        "",
        "--=_alt_1--",
        "",
        "--=_mixed_1",
        f'Content-Type: {attachment_type}; name="{attachment_name}"',
        "Content-Transfer-Encoding: base64",
        f'Content-Disposition: attachment; filename="{attachment_name}"',
        "",
        wrap76(attachment),
        "",
        "--=_mixed_1--",
        "",
    ]
    return "\r\n".join(parts).encode()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(20260310)
    kind = sys.argv[2] if len(sys.argv) > 2 else "docx"
    files = {
        "docx": ("report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        "pdf": ("letter.pdf", "application/pdf"),
    }
    if kind == "none":
        name, ctype, data = "timetable.txt", "text/plain", b"Coach leaves at 08:30 from the front gate.\r\n" * 30
    elif kind in files:
        name, ctype = files[kind]
        with open(os.path.join(ROOT, "fixtures", "files", name), "rb") as f:
            data = f.read()
    else:
        sys.exit(f"unknown attachment kind {kind} (docx, pdf or none)")
    small = message(rng, name, ctype, data, "Spring term newsletter", "load-10k")
    with open(os.path.join(out, "message-10k.eml"), "wb") as f:
        f.write(small)
    # A JPEG-looking photo: JFIF header, then incompressible bytes.
    photo = bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + rng.randbytes(760 * 1024)
    photo += bytes.fromhex("ffd9")
    big = message(rng, "sports-day.jpg", "image/jpeg", photo, "Sports day photographs", "load-1m")
    with open(os.path.join(out, "message-1m.eml"), "wb") as f:
        f.write(big)


if __name__ == "__main__":
    main()
