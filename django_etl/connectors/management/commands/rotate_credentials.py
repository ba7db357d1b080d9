"""Re-encrypt every credential under the key ring's current key: in batches, resumable, safe to interrupt."""

from __future__ import annotations

import time
from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from django_etl.connectors.keyring import UnknownKeyError, get_keyring
from django_etl.connectors.models import Credential, CredentialDecryptionError


class Command(BaseCommand):
    help = (
        "Re-encrypt every credential not yet under the current key (ETL_CREDENTIAL_CURRENT_KEY). Each credential "
        "is re-encrypted in its own short transaction, so the command can be interrupted at any moment and run "
        "again to resume; every credential stays readable throughout, since its encryption_key_id always names "
        "the key of its stored token. With --retire KEY it only checks that KEY encrypts nothing any more."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=100, help="Credentials per progress line.")
        parser.add_argument(
            "--pause",
            type=float,
            default=0.0,
            help="Seconds to wait between credentials (spares a busy database).",
        )
        parser.add_argument(
            "--retire",
            metavar="KEY",
            help="Refuse (exit 1) while KEY still encrypts a credential; else say it may leave the key ring.",
        )

    def handle(self, *args, batch_size: int, pause: float, retire: str | None, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more.")
        ring = get_keyring()
        if retire:
            self.retire(retire, ring.current_id)
            return
        self.rotate(ring.current_id, batch_size, pause)
        self.report_left(ring)

    def rotate(self, current: str, batch_size: int, pause: float) -> None:
        pending = Credential.objects.exclude(encryption_key_id=current)
        total = pending.count()
        self.stdout.write(f"{total} credential(s) to re-encrypt under key {current!r}.")
        rotated = failed = 0
        cursor = None
        while True:
            with transaction.atomic():
                # One row, locked for the moment of its rewrite; a row someone else holds is left for a later run.
                rows = pending.order_by("pk").select_for_update(skip_locked=True)
                if cursor is not None:
                    rows = rows.filter(pk__gt=cursor)
                credential = rows.first()
                if credential is None:
                    break
                cursor = credential.pk
                try:
                    credential.rotate()
                except (CredentialDecryptionError, UnknownKeyError) as exc:
                    failed += 1
                    self.stderr.write(f"skipped {credential.pk}: {exc}")
                    continue
                # update(): the token and its key id change in one statement (and audit history sees no
                # ciphertext); a reader sees either the old pair or the new one, both decryptable.
                Credential.objects.filter(pk=credential.pk).update(
                    encrypted_data=credential.encrypted_data, encryption_key_id=credential.encryption_key_id
                )
            rotated += 1
            if rotated % batch_size == 0:
                self.stdout.write(f"rotated {rotated}/{total}")
                self.stdout.flush()
            if pause:
                time.sleep(pause)
        self.stdout.write(f"rotated {rotated}/{total}; {failed} could not be decrypted (named above).")

    def report_left(self, ring) -> None:
        left = Counter(
            Credential.objects.exclude(encryption_key_id=ring.current_id).values_list(
                "encryption_key_id", flat=True
            )
        )
        if not left:
            self.stdout.write("0 credential(s) left under retired keys.")
            return
        for key_id, count in sorted(left.items()):
            state = "in the key ring" if key_id in ring.keys else "NOT in the key ring"
            self.stdout.write(f"{count} credential(s) left under key {key_id!r} ({state}).")

    def retire(self, key_id: str, current: str) -> None:
        if key_id == current:
            raise CommandError(
                f"Key {key_id!r} is the current key: make another key current (ETL_CREDENTIAL_CURRENT_KEY), "
                "run rotate_credentials, then retire it."
            )
        count = Credential.objects.filter(encryption_key_id=key_id).count()
        if count:
            raise CommandError(
                f"Key {key_id!r} still encrypts {count} credential(s): run `manage.py rotate_credentials` first; "
                "removing it from the key ring now would make them unreadable."
            )
        self.stdout.write(f"Key {key_id!r} encrypts no credential: it may be removed from the key ring.")
