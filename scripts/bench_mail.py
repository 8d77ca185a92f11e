"""What scripts/bench-backlog and scripts/bench-cpu share: the complaints they take in and
the firm they take them in for (so their figures are about the same mail)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BODY = ("Ik ben niet tevreden over de gang van zaken bij het project en verzoek u "
        "dit als klacht te behandelen. ") * 48


def complaint(tag, i, attachment_b64=None):
    """A ~5 KB complaint (with a base64 attachment when given): (Message-ID, raw bytes)."""
    mid = f"bench-{tag}-{i}@example.nl"
    head = (f"From: Klant {i} <klant{i}.{tag}@example.nl>\r\n"
            f"To: klachten@firma.nl\r\n"
            f"Subject: Klacht nummer {i}\r\n"
            f"Date: Thu, 19 Nov 2026 10:15:00 +0100\r\n"
            f"Message-ID: <{mid}>\r\n"
            f"MIME-Version: 1.0\r\n")
    text = "\r\n".join(BODY[k:k + 76] for k in range(0, len(BODY), 76))
    if attachment_b64 is None:
        raw = head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n"
        return mid, raw.encode()
    b = f"bench-boundary-{i}"
    raw = (head + f'Content-Type: multipart/mixed; boundary="{b}"\r\n\r\n'
           f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
           f"--{b}\r\nContent-Type: application/pdf\r\n"
           f'Content-Disposition: attachment; filename="bijlage-{i}.pdf"\r\n'
           f"Content-Transfer-Encoding: base64\r\n\r\n").encode()
    return mid, raw + attachment_b64 + f"\r\n--{b}--\r\n".encode()


def config(database, mailbox, outgoing, extra=""):
    """klachtpost's config for the bench firm; the other sections as TOML text."""
    return f"""
[firm]
name = "Bench"
address = "klachten@firma.nl"
staff_domains = ["firma.nl"]
partners = [{{ name = "A", email = "a@firma.nl" }}, {{ name = "B", email = "b@firma.nl" }}]
[database]
{database.strip()}
[mailbox]
{mailbox.strip()}
[outgoing]
{outgoing.strip()}
[templates]
acknowledgement = "{ROOT}/config/templates/acknowledgement.nl.txt"
extension = "{ROOT}/config/templates/extension.nl.txt"
{extra.strip()}
"""
