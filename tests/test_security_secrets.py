"""Secret inputs (SecretStr / SecretBytes, JSON Schema writeOnly / format: password) are stored and shown as "***",
reach the executor with their real value, come back for a stored task through a resolver or an environment
variable, and validation errors never repeat an input's value."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Optional

import pytest
from pydantic import BaseModel, Field, SecretBytes, SecretStr
from sqlalchemy import text

import apflow_nb
from apflow_nb import BaseTask, ExecutableTask, TaskManager, create_session, executor_register
from apflow_nb.core import secrets
from apflow_nb.core.errors import InputValidationError
from apflow_nb.core.secrets import redact, secret_paths
from apflow_nb.core.storage.task_array import create_task_tree_from_array
from apflow_nb.core.validation import validate_json_schema, validate_model

KEY, TOKEN, PIN, PW = "sk-live-KEY-0001", "tok-NESTED-0002", b"pin-BYTES-0003", "pw-JSON-0004"
ALL = [KEY, TOKEN, PIN.decode(), PW]


class Auth(BaseModel):
    user: str
    token: SecretStr


class Inputs(BaseModel):
    api_key: SecretStr = Field(json_schema_extra={"env": "APFLOW_TEST_API_KEY"})
    pin: Optional[SecretBytes] = None
    auth: Optional[Auth] = None
    keys: list[SecretStr] = []
    query: str = "q"


SEEN: list[dict] = []


class CallApi(BaseTask):
    id = "call_api"
    inputs_schema = Inputs

    async def execute(self, inputs):
        SEEN.append({"api_key": inputs["api_key"].get_secret_value(),
                     "pin": inputs["pin"].get_secret_value() if inputs["pin"] else None,
                     "token": inputs["auth"].token.get_secret_value() if inputs["auth"] else None,
                     "query": inputs["query"]})
        if inputs["query"] == "fail":
            raise RuntimeError("the API said no")
        return {"ok": True, "query": inputs["query"]}


class Login(ExecutableTask):
    id = "login"

    def get_input_schema(self):
        return {"type": "object", "required": ["user", "password"],
                "properties": {"user": {"type": "string"}, "password": {"type": "string", "format": "password"},
                               "extra": {"$ref": "#/$defs/Extra"}},
                "$defs": {"Extra": {"type": "object", "properties": {"otp": {"type": "string", "writeOnly": True}}}}}

    async def execute(self, inputs):
        SEEN.append({"password": inputs["password"], "otp": inputs.get("extra", {}).get("otp")})
        return {"user": inputs["user"]}


@pytest.fixture(autouse=True)
def _clean():
    SEEN.clear()
    secrets.clear_secret_resolvers()
    yield
    secrets.clear_secret_resolvers()
    secrets._vault.clear()


def test_secret_paths_from_pydantic_models_and_json_schema():
    assert secret_paths(CallApi()) == {("api_key",), ("pin",), ("auth", "token"), ("keys", "*")}
    assert secrets.secret_envs(CallApi()) == {("api_key",): "APFLOW_TEST_API_KEY"}
    assert secret_paths(Login()) == {("password",), ("extra", "otp")}

    class Plain(BaseModel):
        note: str = Field(json_schema_extra={"writeOnly": True})
        by_key: dict[str, SecretStr] = {}
        n: int = 0

    class P(BaseTask):
        id = "p"
        inputs_schema = Plain

    assert secret_paths(P) == {("note",), ("by_key", "*")}
    given = {"api_key": KEY, "auth": {"user": "ann", "token": TOKEN}, "keys": ["a1", "b2"], "query": "x", "pin": None}
    shown = redact(given, secret_paths(CallApi()))
    assert shown == {"api_key": "***", "auth": {"user": "ann", "token": "***"}, "keys": ["***", "***"], "query": "x",
                     "pin": None}
    assert given["auth"]["token"] == TOKEN  # a copy: the inputs themselves are untouched


def _stored_text(url: str) -> str:
    db = create_session(url)
    try:
        rows = db.execute(text("select inputs, result, error from apflow_tasks")).all()
        events = db.execute(text("select * from apflow_task_events")).all()
    finally:
        db.close()
    return repr(rows) + repr(events)


async def test_secret_inputs_are_stored_and_shown_as_placeholders(tmp_path, db_url):
    executor_register(CallApi)
    executor_register(Login)
    array = [{"id": "root", "name": "aggregate_results_executor", "dependencies": ["api", "login"]},
             {"id": "api", "name": "call_api", "parent_id": "root",
              "inputs": {"api_key": KEY, "pin": PIN.decode(), "auth": {"user": "ann", "token": TOKEN}}},
             {"id": "login", "name": "login", "parent_id": "root",
              "inputs": {"user": "ann", "password": PW, "extra": {"otp": "otp-5"}}}]
    run = apflow_nb.run(array, store=db_url, display=False)
    node = await run
    assert node.task.status == "completed", node.task.error
    assert {"api_key": KEY, "pin": PIN, "token": TOKEN, "query": "q"} in SEEN  # the executor got the real values
    assert {"password": PW, "otp": "otp-5"} in SEEN
    stored = _stored_text(db_url)
    assert "***" in stored and "ann" in stored
    frame = run.frame()
    assert set(frame.set_index("task_id").loc["api", ["inputs.api_key", "inputs.pin"]]) == {"***"}
    from IPython.terminal.interactiveshell import TerminalInteractiveShell
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython() or TerminalInteractiveShell.instance()
    ip.run_line_magic("load_ext", "apflow_nb")
    table = ip.run_line_magic("apflow", f"history --store {db_url}")
    assert set(table.set_index("task_id").loc["login", ["inputs.password", "inputs.extra.otp"]]) == {"***"}
    everything = [stored, frame.to_string(), frame.to_html(), apflow_nb.history(db_url).to_string(),
                  apflow_nb.events(db_url).to_string(), repr(node.task.inputs), repr(run.events),
                  table.to_string(), table._repr_html_()]
    for secret in ALL + ["otp-5"]:
        assert all(secret not in shown for shown in everything), secret
    db_file = tmp_path / "tasks.db"
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("tasks.db"))
    assert db_file.exists() and not any(s.encode() in raw for s in ALL)  # never written, not even to a free page


async def test_a_stored_task_gets_its_secret_from_a_resolver_or_the_environment(db_url, monkeypatch):
    executor_register(CallApi)
    manager = TaskManager(create_session(db_url))
    tree = create_task_tree_from_array(manager.task_repository, [
        {"id": "a", "name": "call_api", "inputs": {"api_key": KEY, "query": "fail"}}])
    await manager.distribute_task_tree(tree)
    assert SEEN[-1]["api_key"] == KEY and tree.task.status == "failed"
    # same process: a re-run of the failed task still has the value in memory
    await manager.distribute_task_tree(manager.task_repository.get_task_tree_sync("a"))
    assert SEEN[-1]["api_key"] == KEY
    secrets._vault.clear()  # as in another process, or after a restart: only "***" is left
    node = await manager.distribute_task_tree(manager.task_repository.get_task_tree_sync("a"))
    assert node.task.status == "failed" and "SecretMissingError" not in node.task.error
    assert "'api_key' of task 'a' is a secret" in node.task.error and "secret_resolver" in node.task.error
    assert "APFLOW_TEST_API_KEY" in node.task.error and len(SEEN) == 2
    monkeypatch.setenv("APFLOW_TEST_API_KEY", "from-the-env")
    await manager.distribute_task_tree(manager.task_repository.get_task_tree_sync("a"))
    assert SEEN[-1]["api_key"] == "from-the-env"

    @apflow_nb.secret_resolver
    def vault(field, task):
        return f"resolved {field} for {task.key}" if field == "api_key" else None

    await manager.distribute_task_tree(manager.task_repository.get_task_tree_sync("a"))
    assert SEEN[-1]["api_key"] == "resolved api_key for a"
    manager.db.close()


def test_another_process_rerunning_a_stored_tree_reads_the_environment(tmp_path, db_url):
    executor_register(CallApi)
    db = create_session(db_url)
    tree = create_task_tree_from_array(TaskManager(db).task_repository, [
        {"id": "a", "name": "call_api", "inputs": {"api_key": KEY}}])
    db.close()
    script = textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {os.path.dirname(os.path.dirname(__file__))!r})
        from tests.test_security_secrets import CallApi, SEEN
        import apflow_nb
        apflow_nb.executor_register(CallApi)
        node = apflow_nb.run({tree.task.id!r}, store={db_url!r}, display=False).result()
        print(node.task.status, SEEN[-1]["api_key"] if SEEN else None)
    """)
    env = dict(os.environ, APFLOW_TEST_API_KEY="env-in-the-other-process")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["completed", "env-in-the-other-process"]
    assert KEY not in _stored_text(db_url)


def test_validation_errors_never_repeat_an_input_value():
    class M(BaseModel):
        n: int
        code: str = Field(pattern=r"^[a-z]+$", max_length=5)
        key: SecretStr

    with pytest.raises(InputValidationError) as info:
        validate_model(M, {"n": "secret-N-77", "code": "SECRET-CODE-88", "key": 12345}, owner="m")
    message = str(info.value)
    assert "inputs.n:" in message and "inputs.code:" in message and "inputs.key:" in message
    for value in ("secret-N-77", "SECRET-CODE-88", "12345"):
        assert value not in message
    schema = {"type": "object", "required": ["need"], "additionalProperties": False,
              "properties": {"n": {"type": "integer"}, "s": {"type": "string", "pattern": "^a", "maxLength": 3},
                             "e": {"enum": ["x", "y"]}, "need": {"type": "string"}, "m": {"minimum": 10}}}
    with pytest.raises(InputValidationError) as info:
        validate_json_schema(schema, {"n": "secret-J-1", "s": "secret-J-2", "e": "secret-J-3", "m": 7,
                                      "surplus": "secret-J-4"}, owner="j")
    message = str(info.value)
    for value in ("secret-J-1", "secret-J-2", "secret-J-3", "secret-J-4", " 7 "):
        assert value not in message
    for rule in ("inputs.n: is not of type 'integer'", "inputs.s: must match the pattern '^a'",
                 "inputs.s: must have at most 3 character(s)", "inputs.e: must be one of ['x', 'y']",
                 "inputs.m: must be >= 10", "'need' is a required property", "not allowed here: 'surplus'"):
        assert rule in message, (rule, message)


async def test_a_failed_validation_stores_no_value_either(db_url):
    executor_register(Login)
    manager = TaskManager(create_session(db_url))
    task = await manager.task_repository.create_task(name="login", inputs={"user": 12345678, "password": PW})
    node = await manager.distribute_task_tree(apflow_nb.TaskTreeNode(task))
    assert node.task.status == "failed" and "inputs.user: is not of type 'string'" in node.task.error
    stored = _stored_text(db_url)
    assert PW not in stored and "12345678" in stored  # an ordinary input is stored as given, but not in the error
    assert "12345678" not in node.task.error
    manager.db.close()


async def test_a_function_executor_with_a_secret_parameter(db_url):
    got = []

    @executor_register
    async def fetch(url: str, token: SecretStr) -> dict:
        got.append(token.get_secret_value())
        return {"url": url}

    node = await apflow_nb.run([{"name": "fetch", "inputs": {"url": "https://x", "token": "fn-TOKEN-0005"}}],
                               store=db_url, display=False)
    assert node.task.status == "completed" and got == ["fn-TOKEN-0005"]
    assert node.task.inputs == {"url": "https://x", "token": "***"}
    assert "fn-TOKEN-0005" not in _stored_text(db_url)


async def test_a_cached_run_still_hands_the_executor_the_real_secret(db_url):
    executor_register(CallApi)
    manager = TaskManager(create_session(db_url), cache=True)
    for expected_calls in (1, 1):  # the second run is a cache hit: the executor is not called again
        node = await apflow_nb.run([{"name": "call_api", "inputs": {"api_key": KEY, "query": "c"}}],
                                   manager=manager, display=False)
        assert node.task.status == "completed" and node.task.inputs["api_key"] == "***"
        assert [seen["api_key"] for seen in SEEN] == [KEY] * expected_calls
    assert KEY not in _stored_text(db_url)
    db = create_session(db_url)
    try:
        cached = repr(db.execute(text("select * from apflow_cache")).all())
    finally:
        db.close()
    assert KEY not in cached
    manager.db.close()
