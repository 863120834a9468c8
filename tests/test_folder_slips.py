"""An organiser's slip in the folder names (issue 20, third round): INBOX is one folder
however it is written (RFC 3501: its name is case-insensitive), so a processed folder
"inbox" beside the folder "INBOX" is refused at once, naming the key."""

from __future__ import annotations

import pytest
from test_config import base, error_of, passwords  # noqa: F401  (the fixture)


@pytest.mark.parametrize("folder, processed", [("INBOX", "inbox"), ("inbox", "Inbox")])
def test_a_processed_folder_that_is_the_inbox_in_other_letters_is_refused(folder, processed):
    data = base()
    data["imap"]["folder"], data["imap"]["processed_folder"] = folder, processed
    assert error_of(data).startswith("[imap] processed_folder: must differ from folder")
