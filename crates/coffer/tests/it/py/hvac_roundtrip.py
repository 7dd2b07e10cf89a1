"""KV v2 round trip and health through hvac, the Python client most Vault users have.

Run by clients.rs with COFFER_ADDR and COFFER_TOKEN set; prints OK when every check held.
"""
import os
import sys

try:
    import hvac
except ImportError:
    sys.exit("hvac is not installed for this python3 (pip install hvac): cannot test the client")

addr, token = os.environ["COFFER_ADDR"], os.environ["COFFER_TOKEN"]
client = hvac.Client(url=addr, token=token)
assert client.is_authenticated(), "the root token is not authenticated"
assert not hvac.Client(url=addr, token="s.notarealtoken00000000000").is_authenticated()

health = client.sys.read_health_status(method="GET")
assert health["initialized"] is True and health["sealed"] is False, health
assert client.sys.is_initialized() and not client.sys.is_sealed()

kv = client.secrets.kv.v2
created = kv.create_or_update_secret(path="hv/app", secret={"user": "alice", "pw": "one"},
                                     mount_point="secret")
assert created["data"]["version"] == 1, created
read = kv.read_secret_version(path="hv/app", mount_point="secret", raise_on_deleted_version=True)
assert read["data"]["data"] == {"user": "alice", "pw": "one"}, read
assert read["data"]["metadata"]["version"] == 1, read

patched = kv.patch(path="hv/app", secret={"pw": "two", "port": "5432"}, mount_point="secret")
assert patched["data"]["version"] == 2, patched
read = kv.read_secret_version(path="hv/app", mount_point="secret", raise_on_deleted_version=True)
assert read["data"]["data"] == {"user": "alice", "pw": "two", "port": "5432"}, read

kv.create_or_update_secret(path="hv/other", secret={"k": "v"}, mount_point="secret")
kv.create_or_update_secret(path="hv/dir/deep", secret={"k": "v"}, mount_point="secret")
keys = kv.list_secrets(path="hv", mount_point="secret")["data"]["keys"]
assert keys == ["app", "dir/", "other"], keys

meta = kv.read_secret_metadata(path="hv/app", mount_point="secret")["data"]
assert meta["current_version"] == 2 and sorted(meta["versions"]) == ["1", "2"], meta

kv.delete_latest_version_of_secret(path="hv/app", mount_point="secret")
try:
    kv.read_secret_version(path="hv/app", mount_point="secret", raise_on_deleted_version=True)
    sys.exit("a deleted version was readable")
except hvac.exceptions.InvalidPath:
    pass
old = kv.read_secret_version(path="hv/app", version=1, mount_point="secret",
                             raise_on_deleted_version=True)
assert old["data"]["data"] == {"user": "alice", "pw": "one"}, old
kv.undelete_secret_versions(path="hv/app", versions=[2], mount_point="secret")
assert kv.read_secret_version(path="hv/app", mount_point="secret",
                              raise_on_deleted_version=True)["data"]["data"]["pw"] == "two"

kv.delete_metadata_and_all_versions(path="hv/other", mount_point="secret")
keys = kv.list_secrets(path="hv", mount_point="secret")["data"]["keys"]
assert keys == ["app", "dir/"], keys

try:
    hvac.Client(url=addr, token="s.notarealtoken00000000000").secrets.kv.v2.read_secret_version(
        path="hv/app", mount_point="secret", raise_on_deleted_version=True)
    sys.exit("an invalid token read a secret")
except hvac.exceptions.Forbidden:
    pass
print("OK")
