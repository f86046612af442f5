"""Fault catalogue, issue 16 "Secrets" (cases 5 and 6): what must never leave the process.

Each test drives a real stage (``pytester.runpytest_subprocess``) or the real
:class:`~pytest_release.report.redact.Redactor`, and fails when a secret reaches the terminal,
JUnit, GitHub annotations / step summary / outputs, or the ledger.

Cases:

* 5a ``test_parameter_ids_warnings_and_xfail_reasons_are_masked`` - auto ids, ``ids=``,
  warnings and xfail reasons (serial and ``-n 2``).
* 5b ``test_collection_errors_are_masked`` - a module that cannot be imported.
* 5c ``test_truncated_and_split_secrets_are_masked`` - pytest's truncated reprs
  (``'Authorizatio...r abc.def.ghi'``, ``'ghp_01234567...'``), unit level.
* 5d ``test_truncated_assertion_reprs_are_masked_in_every_report`` - the same through a
  real failing assertion (serial and ``-n 2``).
* 5e ``test_ledger_masks_override_approval_and_image`` - ``--override-requires``,
  ``--approved-via`` and ``--image`` text in the ledger and the header.
* 5f ``test_postman_secret_variables_are_masked`` - ``"type": "secret"`` values of a Postman
  environment file (real newman).
* 6  ``test_github_output_cannot_be_injected_through_the_release_id`` - a release id with a
  newline cannot append ``stage_result=passed``.

Issue 24 "Secrets in any encoding" (items 4-6; the rules are in docs/secrets.md):

* 4  ``test_multi_line_secrets_are_masked_line_by_line`` - a PEM key in an exception
  message (``E   `` before each line), a ``-vv`` dict diff, CRLF output (serial, ``-n 2``).
* 5  ``test_encoded_and_split_secrets_are_masked`` - URL, JSON, base64 Basic header, bytes
  repr, a near-equal assertion, ``pprint``'s wrap at ``-vv`` (serial, ``-n 2``);
  ``test_unit_encodings_and_fragment_rule`` - each form and the fragment rule, unit level.
* 6  ``test_secret_in_the_release_id_is_masked_everywhere`` - GITHUB_OUTPUT, ledger, JUnit,
  ``--release-status`` and a later stage's requires;
  ``test_a_refused_release_id_is_quoted_masked`` - the usage error quoting it;
  ``test_secrets_that_mask_nothing_are_warned_about`` - unset, invalid and too-short
  names (serial, ``-n 2``);
  ``test_newman_masks_credential_variables_and_listed_secrets`` (serial, ``-n 2``),
  ``test_newman_secret_variables_are_configurable``,
  ``test_newman_secret_variables_must_be_patterns`` - newman's ``secret_variables``.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from pytest_release.report.github import write_outputs
from pytest_release.report.redact import MASK, Redactor
from tests.support.spine import github_outputs, ledger_runs, project, run_stage
from tests.test_gate_newman import Api, newman_project

TOKEN = "tok-9f8e7d6c5b4a-secret"
# Long enough for pytest's assertion repr (240 characters) to cut it in the middle.
LONG = "k" + "".join(chr(97 + (i * 7) % 26) for i in range(300))
GITHUB_TOKEN = "ghp_0123456789abcdefghijABCDEFGHIJ012345"


def _github_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    summary = pytester.path / "summary.md"
    outputs = pytester.path / "outputs.txt"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    return [summary, outputs]


def _secret_stage(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    secret: tuple[str, str],
    tests: dict[str, str],
) -> list[Path]:
    """Stage ``ci`` runs gate ``unit`` over ``tests`` with the environment variable
    ``secret`` = (name, value) listed in ``secrets`` and GitHub's output files on; the
    files a leak is searched in besides the JUnit report."""
    name, value = secret
    monkeypatch.setenv(name, value)
    extra = _github_env(pytester, monkeypatch)
    project(pytester, f'secrets = ["{name}"]\n[stages.ci]\ngates = ["unit"]\n', **tests)
    return extra


def _leaks(secret: str, result: pytest.RunResult, *files: Path) -> list[str]:
    """Where ``secret`` (or a 6+ character piece of it next to ``...``) was found."""
    pieces = [secret, secret[:12] + "...", "..." + secret[-12:]]
    found = []
    texts = {"stdout": result.stdout.str(), "stderr": result.stderr.str()}
    texts.update({str(f): f.read_text() for f in files if f.exists()})
    for where, text in texts.items():
        if any(piece in text for piece in pieces):
            found.append(where)
    return found


def test_parameter_ids_warnings_and_xfail_reasons_are_masked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    extra = _secret_stage(
        pytester,
        monkeypatch,
        ("API_TOKEN", TOKEN),
        {
            "tests/unit/test_params.py": """
                import os, warnings
                import pytest

                TOKEN = os.environ["API_TOKEN"]

                @pytest.mark.parametrize("token", [TOKEN])
                def test_auto_id(token):
                    assert token == "wrong"

                @pytest.mark.parametrize("token", [1], ids=[f"with-{TOKEN}"])
                def test_explicit_id(token):
                    warnings.warn(f"token {TOKEN} is about to expire")

                @pytest.mark.xfail(reason=f"rotating {TOKEN}")
                def test_xfail():
                    assert False
            """,
        },
    )
    result = run_stage(pytester, "ci", "-v", "-rA", *xdist)
    result.assert_outcomes(passed=1, failed=1, xfailed=1, warnings=1)
    assert "warnings summary" in result.stdout.str()
    assert "test_auto_id[***]" in result.stdout.str()
    assert "test_explicit_id[with-***]" in result.stdout.str()
    assert "rotating ***" in result.stdout.str()
    assert _leaks(TOKEN, result, pytester.path / "reports" / "ci.xml", *extra) == []


def test_collection_errors_are_masked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = _secret_stage(
        pytester,
        monkeypatch,
        ("API_TOKEN", TOKEN),
        {
            "tests/unit/test_broken.py": """
                import os
                raise RuntimeError("cannot log in with " + os.environ["API_TOKEN"])
            """,
        },
    )
    result = run_stage(pytester, "ci")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*RuntimeError: cannot log in with ***"])
    assert _leaks(TOKEN, result, pytester.path / "reports" / "ci.xml", *extra) == []


def test_truncated_and_split_secrets_are_masked() -> None:
    redact = Redactor.from_env(
        ["HEADER", "GH"],
        {"HEADER": "Authorization: Bearer abc.def.ghi", "GH": GITHUB_TOKEN},
    )
    # pytest's saferepr keeps the two ends of a long string around "...".
    assert redact("assert 'Authorizatio...r abc.def.ghi' == 'x'") == "assert '***...***' == 'x'"
    assert redact("E  'ghp_01234567...'") == "E  '***...'"
    # A token shape cut by "..." is masked even when not configured.
    assert Redactor()("seen 'ghp_01234567...'") == "seen '***...'"
    # Pieces shorter than 6 characters, or not at a cut, are ordinary text.
    assert redact("Autho... abc.def") == "Autho... abc.def"
    assert redact("Authorization is required") == "Authorization is required"
    # The escaped form pytest uses in parameter ids.
    quoted = Redactor.from_env(["Q"], {"Q": "p\\a\nss-word"})
    assert MASK in quoted("test_x[p\\\\a\\nss-word]")


def test_the_cheap_pre_test_never_skips_a_text_the_pattern_would_mask() -> None:
    """The redactor skips its regex pass for text with no configured value and no anchor
    of a credential shape; on texts mixing every shape's pieces (any case, cut by
    ``...``, next to configured values) it must mask exactly what the full pass masks."""
    import random

    redact = Redactor.from_env(["T", "H"], {"T": TOKEN, "H": "Authorization: Bearer abc.def.ghi"})
    pieces = [
        "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "GHP_", "github_pat_", "xoxb-", "xoxp-",
        "XOXB-", "Bearer ", "BEARER ", "bEaReR ", "bearer", "https://hooks.slack.com/services/",
        "https://hooks.slack-gov.com/workflows/", "HOOKS.SLACK.COM/", "...", " ", "\n", "'",
        "0123456789", "abcdefghijABCDEFGHIJ", "_", "-", "=", TOKEN, TOKEN[:9], "tok-9f8e",
        "abc.def.ghi", "gh", "xo", "\u017f", "\u212a",
    ]  # fmt: skip
    rng = random.Random(20261202)
    skipped = 0
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        # Every step without its pre-test (the regex pass, base64 words, fragments, cuts).
        whole = redact._mask_base64(redact._pattern.sub(MASK, text))
        full = redact._mask_fragments(whole)
        if redact._pieces and "..." in full:
            full = redact._mask_cut_pieces(full)
            whole = redact._mask_cut_pieces(whole)
        assert redact(text) == full, text
        # finds() (for node ids: fragments are not searched) never says no when masking
        # without fragments changes the text.
        assert redact.finds(text) or whole == text, text
        skipped += not redact._may_match(text)
    assert skipped > 500  # the pre-test does skip ordinary text


def test_truncated_assertion_reprs_are_masked_in_every_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    extra = _secret_stage(
        pytester,
        monkeypatch,
        ("LONG_SECRET", LONG),
        {
            "tests/unit/test_long.py": """
                import os

                def test_header():
                    headers = {"Authorization": os.environ["LONG_SECRET"]}
                    assert headers["Authorization"] == "x"

                def test_list():
                    assert [os.environ["LONG_SECRET"]] == []
            """,
        },
    )
    result = run_stage(pytester, "ci", "-rA", *xdist)
    result.assert_outcomes(failed=2)
    assert "..." in result.stdout.str()  # pytest did truncate
    for piece in (LONG[:10], LONG[-10:]):
        assert piece not in result.stdout.str()
        for path in (pytester.path / "reports" / "ci.xml", *extra):
            assert piece not in path.read_text(), path


def test_ledger_masks_override_approval_and_image(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", TOKEN)
    project(
        pytester,
        'secrets = ["API_TOKEN"]\n[stages.ci]\ngates = ["unit"]\n',
        **{"tests/unit/test_ok.py": "def test_ok():\n    pass\n"},
    )
    result = run_stage(
        pytester,
        "ci",
        f"--override-requires=hotfix, token {TOKEN}",
        f"--approved-via=https://chat.example/approve?t={TOKEN}",
        f"--image=registry.example/shop:1?auth={TOKEN}",
    )
    assert result.ret == 0
    ledger = (pytester.path / ".pytest-release" / "ledger.json").read_text()
    assert TOKEN not in ledger
    (run,) = ledger_runs(pytester.path)
    assert run["override_requires"] == "hotfix, token ***"
    assert run["approval"]["via"] == "https://chat.example/approve?t=***"
    assert run["image"] == "registry.example/shop:1?auth=***"
    assert TOKEN not in result.stdout.str()


def test_postman_secret_variables_are_masked(
    pytester: pytest.Pytester, api: Api, newman_bin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "pm-env-secret-5e6f7a8b"
    extra = _github_env(pytester, monkeypatch)
    root = newman_project(
        pytester,
        f"""
        collections = ["api/secret.postman_collection.json"]
        environment = "api/ci.postman_environment.json"
        newman = "{newman_bin}"
        env_vars = {{ baseUrl = "{api.url}" }}
        """,
        "secret.postman_collection.json",
    )
    (root / "api" / "ci.postman_environment.json").write_text(
        json.dumps(
            {
                "name": "ci",
                "values": [
                    {"key": "token", "value": secret, "type": "secret", "enabled": True},
                    {"key": "region", "value": "eu-west-1", "type": "default", "enabled": True},
                ],
            }
        )
    )
    result = run_stage(pytester, "api", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FAILED  token is the expected one: expected '***' to *"])
    assert _leaks(secret, result, root / "reports" / "api.xml", *extra) == []


def test_github_output_cannot_be_injected_through_the_release_id(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, outputs = _github_env(pytester, monkeypatch)
    project(
        pytester,
        '[stages.ci]\ngates = ["unit"]\n',
        **{"tests/unit/test_no.py": "def test_no():\n    assert False\n"},
    )
    result = run_stage(pytester, "ci", release="x\nstage_result=passed")
    if result.ret == pytest.ExitCode.USAGE_ERROR:
        # Release ids are validated (another part of issue 16): refused before any output.
        assert not outputs.exists() or "passed" not in outputs.read_text()
        return
    assert result.ret == 1
    parsed = github_outputs(outputs)
    assert parsed["stage_result"] == "failed"
    assert parsed["release_id"] == "x\nstage_result=passed"


def test_github_output_delimiter_never_occurs_in_the_value(tmp_path: Path) -> None:
    target = tmp_path / "out"
    hostile = "a\nEOF\nghadelimiter_x\nstage_result=passed"
    write_outputs({"release_id": hostile, "stage_result": "failed"}, {"GITHUB_OUTPUT": str(target)})
    parsed = github_outputs(target)
    assert parsed == {"release_id": hostile, "stage_result": "failed"}


# -- issue 24, items 4-6: secrets in any encoding ------------------------------------------
# A PEM-shaped key (not a real key): pytest prints an exception message holding it with
# "E   " before every line, so the value as a whole never appears.
PEM_LINES = (
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu",
    "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ",
)
PEM = "\n".join(["-----BEGIN PRIVATE KEY-----", *PEM_LINES, "-----END PRIVATE KEY-----"])
# Every 8-character window holds a digit, so any such window seen in a report is a leak
# (the redactor leaves shorter or plain-text pieces by design: docs/secrets.md).
WEB_SECRET = "Zq9/x+T3-p@ss=W0rd&k7 Lm4#vB8?cY2!nH5%aQ8~"


def _reports(pytester: pytest.Pytester, result: pytest.RunResult, *files: Path) -> dict[str, str]:
    """Every text the stage wrote: terminal (annotations are printed there), JUnit, the
    ledger and the given GitHub files."""
    texts = {"stdout": result.stdout.str(), "stderr": result.stderr.str()}
    for path in (
        pytester.path / "reports" / "ci.xml",
        pytester.path / ".pytest-release" / "ledger.json",
        *files,
    ):
        texts[path.name] = path.read_text(encoding="utf-8")
    return texts


def _windows(text: str, size: int = 8) -> set[str]:
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def _found(pieces: set[str], texts: dict[str, str]) -> dict[str, list[str]]:
    """Which of ``pieces`` each text holds (only texts holding some)."""
    found = {where: sorted(p for p in pieces if p in text) for where, text in texts.items()}
    return {where: pieces for where, pieces in found.items() if pieces}


def test_multi_line_secrets_are_masked_line_by_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    """Issue 24 item 4: a PEM key in an exception message, in a -vv assertion of a
    dict, and logged with Windows line ends."""
    extra = _secret_stage(
        pytester,
        monkeypatch,
        ("SIGNING_KEY", PEM),
        {
            "tests/unit/test_key.py": """
                import os

                KEY = os.environ["SIGNING_KEY"]

                def test_key_in_exception_message():
                    raise ValueError("cannot load the signing key:\\n" + KEY)

                def test_key_in_dict_assertion():
                    assert {"key": KEY, "kid": "k1"} == {"key": KEY, "kid": "k2"}

                def test_key_with_crlf_in_output():
                    print(KEY.replace("\\n", "\\r\\n"))
                    assert False
            """,
        },
    )
    result = run_stage(pytester, "ci", "-vv", "-rA", *xdist)
    result.assert_outcomes(failed=3)
    texts = _reports(pytester, result, *extra)
    assert "cannot load the signing key" in texts["stdout"]
    assert _found({*PEM_LINES, *(line[8:40] for line in PEM_LINES)}, texts) == {}


def test_encoded_and_split_secrets_are_masked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    """Issue 24 item 5: the encodings a web service's tests produce (URL, JSON, base64
    in a Basic header, bytes repr), a near-equal assertion (all characters but one) and
    pprint's split of a long value at -vv."""
    import base64
    from urllib.parse import quote

    extra = _secret_stage(
        pytester,
        monkeypatch,
        ("API_SECRET", WEB_SECRET),
        {
            "tests/unit/test_web.py": """
                import base64, json, os
                from urllib.parse import quote

                SECRET = os.environ["API_SECRET"]

                def test_url_encoded():
                    url = "http://127.0.0.1:9/orders?token=" + quote(SECRET, safe="")
                    assert url.endswith("/orders")

                def test_json_body():
                    body = json.dumps({"token": SECRET, "note": "line\\nbreak"})
                    assert body == "{}"

                def test_basic_auth_header():
                    pair = f"shop-client:{SECRET}".encode()
                    header = "Basic " + base64.b64encode(pair).decode()
                    assert header == "Basic c2hvcA=="

                def test_bytes_body():
                    assert SECRET.encode() + b"\\n" == b"{}"

                def test_near_equal():
                    typed = SECRET[:-1] + "X"
                    assert SECRET == typed

                def test_pprint_split():
                    long = "a long value: " + SECRET + " " + SECRET
                    assert {"token": long, "user": "a"} == {"token": long, "user": "b"}
            """,
        },
    )
    result = run_stage(pytester, "ci", "-vv", "-rA", *xdist)
    result.assert_outcomes(failed=6)
    texts = _reports(pytester, result, *extra)
    assert "Full diff" in texts["stdout"]  # -vv did print pprint's diff
    header = base64.b64encode(f"shop-client:{WEB_SECRET}".encode()).decode()
    pieces = {
        *_windows(WEB_SECRET),
        *_windows(quote(WEB_SECRET, safe="")),
        *_windows(repr(WEB_SECRET.encode())[2:-1]),
        *_windows(header),
    }
    assert _found(pieces, texts) == {}


def test_unit_encodings_and_fragment_rule() -> None:
    """Issue 24 items 4-5 at the redactor: each form masked, and what stays (plain-text
    pieces of a secret shorter than 24 characters, pieces under 6)."""
    import base64
    import json
    from urllib.parse import quote, quote_plus

    redact = Redactor.from_env(["W", "K", "T"], {"W": WEB_SECRET, "K": PEM, "T": TOKEN})
    assert redact("q=" + quote(WEB_SECRET, safe="")) == "q=***"
    assert redact("q=" + quote_plus(WEB_SECRET)) == "q=***"
    assert redact(json.dumps({"t": WEB_SECRET})) == '{"t": "***"}'
    assert redact(repr(json.dumps({"k": PEM}))) == '\'{"k": "***"}\''
    assert redact(ascii(WEB_SECRET + "\u00e9")) == "'***\\xe9'"
    for user in ("", "a", "ab", "abc", "shop-client"):  # every alignment of the secret
        token = base64.b64encode(f"{user}:{WEB_SECRET}".encode()).decode()
        assert redact(f"Authorization: Basic {token}") == "Authorization: Basic ***", user
        urlsafe = base64.urlsafe_b64encode(f"{user}:{WEB_SECRET}".encode()).decode()
        assert redact(f"jwt={urlsafe.rstrip('=')}.x") == "jwt=***.x", user
    assert redact("E   " + PEM.replace("\n", "\nE   ")).count(PEM_LINES[0][:8]) == 0
    # Fragments: 6+ characters that look random are masked wherever they appear ...
    assert redact(f"- {WEB_SECRET[:-1]}X") == "- ***X"
    assert redact(f"'{WEB_SECRET[3:12]}'") == "'***'"
    assert redact("id 9f8e7d!") == "id ***!"
    # ... plain text a secret shares with ordinary text is left, as are pieces under 6.
    assert redact("secrets = ['API_TOKEN'] the-secret") == "secrets = ['API_TOKEN'] the-secret"
    assert redact("-----BEGIN PRIVATE KEY") == "-----BEGIN PRIVATE KEY"
    assert redact(f"x {WEB_SECRET[:5]} y") == f"x {WEB_SECRET[:5]} y"


def test_secret_in_the_release_id_is_masked_everywhere(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24 item 6: a release id holding a secret is masked in GITHUB_OUTPUT, the
    ledger, JUnit and the terminal, and a later stage of the same release still finds
    the record it requires."""
    monkeypatch.setenv("API_TOKEN", TOKEN)
    extra = _github_env(pytester, monkeypatch)
    project(
        pytester,
        'secrets = ["API_TOKEN"]\n[stages.ci]\ngates = ["unit"]\n'
        '[stages.deploy]\ngates = ["unit"]\nrequires = ["ci"]\n',
        **{"tests/unit/test_ok.py": "def test_ok():\n    pass\n"},
    )
    release = f"build-42-{TOKEN}"
    result = run_stage(pytester, "ci", release=release)
    assert result.ret == 0
    texts = _reports(pytester, result, *extra)
    assert _found({TOKEN, TOKEN[4:16]}, texts) == {}
    assert github_outputs(extra[1])["release_id"] == "build-42-***"
    assert [run["release_id"] for run in ledger_runs(pytester.path)] == ["build-42-***"]
    status = pytester.runpytest_subprocess(f"--release-id={release}", "--release-status")
    assert "ci" in status.stdout.str()
    assert "passed" in status.stdout.str()
    assert TOKEN not in status.stdout.str()
    deploy = run_stage(pytester, "deploy", release=release)
    assert deploy.ret == 0, deploy.stdout.str()
    assert TOKEN not in deploy.stdout.str()


def test_a_refused_release_id_is_quoted_masked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release id refused as a usage error (here: a space) is quoted in the error with
    its secret masked."""
    monkeypatch.setenv("API_TOKEN", TOKEN)
    project(
        pytester,
        'secrets = ["API_TOKEN"]\n[stages.ci]\ngates = ["unit"]\n',
        **{"tests/unit/test_ok.py": "def test_ok():\n    pass\n"},
    )
    result = run_stage(pytester, "ci", release=f"build 42 {TOKEN}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--release-id = 'build 42 ***' contains whitespace" in result.stderr.str()
    assert TOKEN not in result.stdout.str() + result.stderr.str()


def test_secrets_that_mask_nothing_are_warned_about(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    """Issue 24 item 6: names that are unset or not variable names, and values shorter
    than 4 characters, are named in a warning (the value never), by the controller only."""
    monkeypatch.setenv("API_TOKEN", TOKEN)
    monkeypatch.setenv("PIN", "9z7")
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    project(
        pytester,
        'secrets = ["API_TOKEN", "NOT_SET_HERE", "BAD NAME", "PIN"]\n'
        '[stages.ci]\ngates = ["unit"]\n',
        **{"tests/unit/test_ok.py": "def test_ok():\n    pass\n"},
    )
    result = run_stage(pytester, "ci", *xdist)
    assert result.ret == 0
    out = result.stdout.str()
    expected = (
        "'NOT_SET_HERE' is not set",
        "'BAD NAME' is not an environment variable name",
        "the value of 'PIN' is shorter than 4 characters: too short to mask safely",
    )
    for text in expected:
        # The stage's warning lines: in the header and again in the final summary.
        assert out.count(text) == 2, (text, out)
    assert "9z7" not in out
    assert "API_TOKEN" not in out


_FROM_SECRETS = 'fromSecrets = "${LISTED_SECRET}"'


def _newman_credentials_project(
    pytester: pytest.Pytester, api: Api, newman_bin: str, gate_extra: str = ""
) -> Path:
    """A collection whose one request sends credentials of every origin in its URL and
    fails an assertion that prints them."""
    root = newman_project(
        pytester,
        f"""
        collections = ["api/creds.postman_collection.json"]
        environment = "api/ci.postman_environment.json"
        newman = "{newman_bin}"
        env_vars = {{ baseUrl = "{api.url}", accessToken = "${{ACCESS_TOKEN}}", {_FROM_SECRETS} }}
        {gate_extra}
        """,
        extra='secrets = ["LISTED_SECRET"]',
    )
    query = "&".join(
        f"{name}={{{{{name}}}}}"
        for name in ("apiKey", "password", "accessToken", "fromSecrets", "clientSecret", "region")
    )
    collection = {
        "info": {
            "name": "creds",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
        },
        "variable": [{"key": "clientSecret", "value": "cs7w3Rt9yU2e"}],
        "item": [
            {
                "name": "credentials",
                "request": {"method": "GET", "url": "{{baseUrl}}/health?" + query},
                "event": [
                    {
                        "listen": "test",
                        "script": {
                            "exec": [
                                "pm.test('url', () => "
                                "pm.expect(pm.request.url.toString()).to.eql('nothing'));"
                            ]
                        },
                    }
                ],
            }
        ],
    }
    (root / "api" / "creds.postman_collection.json").write_text(json.dumps(collection))
    environment = {
        "name": "ci",
        "values": [
            {"key": "apiKey", "value": "ak5Tg8Hy2Kq7", "type": "default", "enabled": True},
            {"key": "password", "value": "pw3Xc6Vb9Nm4", "type": "default", "enabled": True},
            {"key": "region", "value": "eu-west-1z9", "type": "default", "enabled": True},
            {"key": "pin", "value": "7q1", "type": "secret", "enabled": True},
        ],
    }
    (root / "api" / "ci.postman_environment.json").write_text(json.dumps(environment))
    return root


NEWMAN_CREDENTIALS = {
    "ak5Tg8Hy2Kq7": "apiKey in the environment file (type default)",
    "pw3Xc6Vb9Nm4": "password in the environment file (type default)",
    "at8Jk4Lp1Zx6": "accessToken in env_vars, from $ACCESS_TOKEN (not in secrets)",
    "7Dk+2Ws/9Qp 4Rf=8Ty!1": "fromSecrets in env_vars, from $LISTED_SECRET (in secrets)",
    "cs7w3Rt9yU2e": "clientSecret, a variable of the collection",
}


def test_newman_masks_credential_variables_and_listed_secrets(
    pytester: pytest.Pytester,
    api: Api,
    newman_bin: str,
    monkeypatch: pytest.MonkeyPatch,
    xdist: list[str],
) -> None:
    """Issue 24 item 6: newman prints variables named like credentials (environment
    file, env_vars, the collection's variables) and values listed in ``secrets`` (in the
    URL newman encodes): masked in the terminal, JUnit, annotations and the step summary,
    and in what the run leaves in the run directory (outcome and newman's JSON report)."""
    monkeypatch.setenv("ACCESS_TOKEN", "at8Jk4Lp1Zx6")
    monkeypatch.setenv("LISTED_SECRET", "7Dk+2Ws/9Qp 4Rf=8Ty!1")
    run_dirs = pytester.path / "run-dirs"
    run_dirs.mkdir()
    monkeypatch.setenv("TMPDIR", str(run_dirs))
    extra = _github_env(pytester, monkeypatch)
    root = _newman_credentials_project(pytester, api, newman_bin)
    # Keep the run directory to read what newman wrote there.
    (root / "conftest.py").write_text(
        "from pytest_release.stage.run_dir import RunDir\nRunDir.remove = lambda self: None\n"
    )
    result = run_stage(pytester, "api", "-rA", *xdist)
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "region=eu-west-1z9" in out  # not a credential's name: shown
    # Too short to mask: said once per stage (header and summary), by the controller.
    warning = "Postman variable(s) 'pin' is shorter than 4 characters: too short to mask"
    assert out.count(warning) == 2, out
    texts = {"stdout": out, "stderr": result.stderr.str()}
    ledger = root / ".pytest-release" / "ledger.json"
    for path in (root / "reports" / "api.xml", ledger, *extra, *run_dirs.rglob("*.json")):
        texts[str(path)] = path.read_text(encoding="utf-8")
    assert any("newman-" in where for where in texts)  # newman's report was kept
    pieces: set[str] = set()
    for value in NEWMAN_CREDENTIALS:
        pieces |= _windows(value) | _windows(quote(value, safe=""))
    assert all(any(c.isdigit() for c in piece) for piece in pieces)  # none is plain text
    assert _found(pieces, texts) == {}


def test_newman_secret_variables_are_configurable(
    pytester: pytest.Pytester, api: Api, newman_bin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``secret_variables`` replaces the default name patterns: here only ``*region*``."""
    monkeypatch.setenv("ACCESS_TOKEN", "at8Jk4Lp1Zx6")
    monkeypatch.setenv("LISTED_SECRET", "7Dk+2Ws/9Qp 4Rf=8Ty!1")
    _newman_credentials_project(pytester, api, newman_bin, 'secret_variables = ["*REGION*"]')
    result = run_stage(pytester, "api", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "region=***" in out
    assert "eu-west-1z9" not in out
    assert "apiKey=ak5Tg8Hy2Kq7" in out  # no longer a credential's name
    assert "7Dk+2Ws" not in out  # listed in secrets: masked whatever the patterns


def test_newman_secret_variables_must_be_patterns(pytester: pytest.Pytester) -> None:
    newman_project(pytester, 'secret_variables = ["*token*", " "]')
    result = run_stage(pytester, "api")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*secret_variables*contains an empty pattern (' ')*"])
