#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/seeds/<target>/) from the requests the official SDKs send
(shapes taken from the crates' tests and the SDKs' wire formats). Run from anywhere; idempotent."""
import base64, hashlib, json, os, urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1:8080"


def put(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


TENCENT = [
    ("DescribeRegions", {}),
    ("DescribeZones", {}),
    ("DescribeImages", {"Filters": [{"Name": "image-type", "Values": ["PUBLIC_IMAGE"]}], "Limit": 10}),
    ("DescribeInstanceTypeConfigs", {"Filters": [{"Name": "zone", "Values": ["ap-guangzhou-3"]}]}),
    ("RunInstances", {"Placement": {"Zone": "ap-guangzhou-3"}, "ImageId": "img-tos31x64",
                      "InstanceType": "S5.MEDIUM2", "InstanceCount": 1, "InstanceName": "web",
                      "SystemDisk": {"DiskType": "CLOUD_PREMIUM", "DiskSize": 50},
                      "DataDisks": [{"DiskType": "CLOUD_PREMIUM", "DiskSize": 100}],
                      "LoginSettings": {"Password": "Nubis@2026pw"}, "HostName": "web-1",
                      "ClientToken": "tok-1", "TagSpecification": [{"ResourceType": "instance",
                      "Tags": [{"Key": "k", "Value": "v"}]}], "DryRun": False}),
    ("DescribeInstances", {"InstanceIds": ["ins-aaaaaaaa"], "Offset": 0, "Limit": 20}),
    ("DescribeInstances", {"Filters": [{"Name": "instance-name", "Values": ["web"]}]}),
    ("DescribeInstancesStatus", {"Limit": 100}),
    ("StartInstances", {"InstanceIds": ["ins-aaaaaaaa"]}),
    ("StopInstances", {"InstanceIds": ["ins-aaaaaaaa"], "StopType": "SOFT", "StoppedMode": "KEEP_CHARGING"}),
    ("RebootInstances", {"InstanceIds": ["ins-aaaaaaaa"], "ForceReboot": True}),
    ("TerminateInstances", {"InstanceIds": ["ins-aaaaaaaa"]}),
    ("ResetInstancesPassword", {"InstanceIds": ["ins-aaaaaaaa"], "Password": "Nubis@2026pw", "ForceStop": True}),
    ("EnterRescueMode", {"InstanceId": "ins-aaaaaaaa", "Password": "Nubis@2026pw"}),
    ("ExitRescueMode", {"InstanceId": "ins-aaaaaaaa"}),
    ("CreateKeyPair", {"KeyName": "k", "ProjectId": 0}),
    ("ImportKeyPair", {"KeyName": "k2", "ProjectId": 0, "PublicKey": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@host"}),
    ("DescribeKeyPairs", {"KeyIds": ["skey-aaaaaaaa"]}),
    ("DeleteKeyPairs", {"KeyIds": ["skey-aaaaaaaa"]}),
    ("AssociateInstancesKeyPairs", {"InstanceIds": ["ins-aaaaaaaa"], "KeyIds": ["skey-aaaaaaaa"]}),
    ("DisassociateInstancesKeyPairs", {"InstanceIds": ["ins-aaaaaaaa"], "KeyIds": ["skey-aaaaaaaa"]}),
]


def flatten(prefix, v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            flatten(f"{prefix}.{k}" if prefix else k, x, out)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            flatten(f"{prefix}.{i}", x, out)
    else:
        out.append((prefix, str(v).lower() if isinstance(v, bool) else str(v)))
    return out


ALIYUN = [
    ("DescribeRegions", {}),
    ("DescribeZones", {}),
    ("DescribeImages", {"ImageOwnerAlias": "system", "PageSize": "10"}),
    ("DescribeInstanceTypes", {"InstanceTypeFamily": "ecs.g6"}),
    ("RunInstances", {"ZoneId": "cn-hangzhou-h", "ImageId": "ubuntu_22_04_x64_20G_alibase_20240101.vhd",
                      "InstanceType": "ecs.g6.large", "Amount": "2", "InstanceName": "web",
                      "HostName": "web-1", "Password": "Nubis@2026pw", "SystemDisk.Size": "40",
                      "DataDisk.1.Size": "100", "DataDisk.1.Category": "cloud_essd",
                      "Tag.1.Key": "k", "Tag.1.Value": "v", "ClientToken": "tok-1", "DryRun": "false"}),
    ("CreateInstance", {"ZoneId": "cn-hangzhou-h", "ImageId": "ubuntu_22_04_x64_20G_alibase_20240101.vhd",
                        "InstanceType": "ecs.g6.large", "ClientToken": "tok-2"}),
    ("DescribeInstances", {"InstanceIds": '["i-bp1abc","i-bp2def"]', "PageSize": "10", "PageNumber": "1"}),
    ("DescribeInstances", {"InstanceName": "web*", "Status": "Running", "MaxResults": "10", "NextToken": "x"}),
    ("DescribeInstanceStatus", {"PageSize": "50"}),
    ("StartInstance", {"InstanceId": "i-bp1abc"}),
    ("StartInstances", {"InstanceId.1": "i-bp1abc", "InstanceId.2": "i-bp2def", "BatchOptimization": "AllTogether"}),
    ("StopInstance", {"InstanceId": "i-bp1abc", "ForceStop": "true", "StoppedMode": "StopCharging"}),
    ("StopInstances", {"InstanceId.1": "i-bp1abc", "ForceStop": "false"}),
    ("RebootInstance", {"InstanceId": "i-bp1abc", "ForceStop": "true"}),
    ("RebootInstances", {"InstanceId.1": "i-bp1abc"}),
    ("DeleteInstance", {"InstanceId": "i-bp1abc", "Force": "true"}),
    ("DeleteInstances", {"InstanceId.1": "i-bp1abc", "Force": "true"}),
    ("ModifyInstanceAttribute", {"InstanceId": "i-bp1abc", "InstanceName": "n", "Password": "Nubis@2026pw",
                                 "HostName": "h", "Description": "d"}),
    ("CreateKeyPair", {"KeyPairName": "k"}),
    ("ImportKeyPair", {"KeyPairName": "k2", "PublicKeyBody": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@host"}),
    ("DescribeKeyPairs", {"KeyPairName": "k*", "IncludePublicKey": "true"}),
    ("DeleteKeyPairs", {"KeyPairNames": '["k","k2"]'}),
    ("AttachKeyPair", {"KeyPairName": "k", "InstanceIds": '["i-bp1abc"]'}),
    ("DetachKeyPair", {"KeyPairName": "k", "InstanceIds": '["i-bp1abc"]'}),
    # System events (docs/system-events.md).
    ("CreateSimulatedSystemEvents", {"InstanceId.1": "i-bp1abc", "EventType": "SystemMaintenance.Reboot",
                                     "NotBefore": "2030-01-01T00:00:00Z"}),
    ("CancelSimulatedSystemEvents", {"EventId.1": "e-bp1abc", "EventId.100": "e-x"}),
    ("DescribeInstanceHistoryEvents", {"InstanceEventCycleStatus.1": "Scheduled", "InstanceEventType.1": "SystemFailure.Reboot",
                                       "NotBefore.Start": "2030-01-01T00:00:00Z", "NotBefore.End": "2029-01-01T00:00:00Z",
                                       "ResourceId.1": "i-bp1abc", "Tag.1.Key": "k", "MaxResults": "5", "NextToken": "99999999999999999999"}),
]

OPENSTACK = [
    # (prefix index, method, path, body)
    (0, "POST", "/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": "Fuzz-Passw0rd1"}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}),
    (0, "POST", "/auth/tokens", {"auth": {"identity": {"methods": ["token"], "token": {"id": "x"}},
        "scope": {"system": {"all": True}}}}),
    (0, "GET", "/auth/tokens", None),
    (0, "DELETE", "/auth/tokens", None),
    (0, "GET", "/", None),
    (1, "GET", "/servers/detail?limit=2&marker=x&name=web&status=ACTIVE", None),
    (1, "POST", "/servers", {"server": {"name": "web", "imageRef": "ubuntu-22.04", "flavorRef": "m1.small",
        "key_name": "k", "min_count": 1, "max_count": 2, "adminPass": "Nubis@2026pw",
        "availability_zone": "nova", "metadata": {"a": "b"}, "networks": "auto"}}),
    (1, "GET", "/servers/00000000-0000-0000-0000-000000000000", None),
    (1, "PUT", "/servers/00000000-0000-0000-0000-000000000000", {"server": {"name": "x", "description": "d"}}),
    (1, "DELETE", "/servers/00000000-0000-0000-0000-000000000000", None),
    (1, "POST", "/servers/00000000-0000-0000-0000-000000000000/action", {"reboot": {"type": "HARD"}}),
    (1, "POST", "/servers/00000000-0000-0000-0000-000000000000/action", {"os-stop": None}),
    (1, "POST", "/servers/00000000-0000-0000-0000-000000000000/action", {"rescue": {"adminPass": "Nubis@2026pw"}}),
    (1, "POST", "/servers/00000000-0000-0000-0000-000000000000/action", {"changePassword": {"adminPass": "Nubis@2026pw"}}),
    (1, "POST", "/servers/00000000-0000-0000-0000-000000000000/action", {"lock": {"locked_reason": "r"}}),
    (1, "GET", "/flavors/detail", None),
    (1, "GET", "/flavors/m1.small/os-extra_specs", None),
    (1, "POST", "/os-keypairs", {"keypair": {"name": "k", "type": "ssh"}}),
    (1, "POST", "/os-keypairs", {"keypair": {"name": "k2", "public_key": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 u@h"}}),
    (1, "GET", "/os-keypairs/k", None),
    (1, "DELETE", "/os-keypairs/k", None),
    (1, "GET", "/os-availability-zone", None),
    (1, "GET", "/limits", None),
    (2, "GET", "/images?limit=5", None),
    (2, "GET", "/images/00000000-0000-0000-0000-000000000000", None),
    (2, "POST", "/tasks", {"type": "import", "input": {"import_from": "http://h/x", "import_from_format": "qcow2", "image_properties": {}}}),
    (1, "GET", "/servers/00000000-0000-0000-0000-000000000000/shares", None),
    (1, "PUT", "/os-quota-sets/0c1b5bd2ab0a5a3b8cd2e1b1e3f1f0a1?user_id=u1", {"quota_set": {"ram": "2048", "metadata_items": 3, "force": "true"}}),
    (1, "GET", "/os-quota-sets/0c1b5bd2ab0a5a3b8cd2e1b1e3f1f0a1/detail?user_id=u1", None),
    (1, "PUT", "/os-quota-class-sets/default", {"quota_class_set": {"instances": 11, "server_groups": -1}}),
    (3, "GET", "/compute/v2.1/", None),
    (3, "GET", "/identity/v3/", None),
    # Personality (before 2.57; seed 27 carries 2.79, where it is an unknown field).
    (1, "POST", "/servers/00000000-0000-0000-0000-000000000000/action", {"rebuild": {
        "imageRef": "ubuntu-22.04", "personality": [{"path": "rebuild.txt", "contents": "aGk="}]}}),
    (1, "POST", "/servers", {"server": {"name": "p", "imageRef": "ubuntu-22.04", "flavorRef": "m1.small",
        "user_data": "IyEvYmluL3NoCg==", "personality": [{"path": "/etc/motd", "contents": "aGVsbG8K"},
        {"path": "../x", "contents": "!"}]}}),
    # os-migrations: filters, paging and the 2.59 schema (seed 35 carries 2.79).
    (1, "GET", "/os-migrations?instance_uuid=00000000-0000-0000-0000-000000000000&status=finished&host=nubis-az1", None),
    (1, "GET", "/os-migrations?limit=1&marker=00000000-0000-0000-0000-000000000000&changes-since=2026-01-01T00:00:00Z&user_id=u", None),
]


POLICY_CAM = [
    '{"version":"2.0","statement":[{"effect":"allow","action":"cos:PutObject","resource":"*","condition":{"ip_equal":{"qcs:ip":["10.217.182.3/24","111.21.33.72/24"]}}}]}',
    '{"version":"2.0","statement":[{"effect":"allow","action":"name/vpc:AcceptVpcPeeringConnection","resource":"qcs::vpc:sh::pcx/2341","condition":{"string_equal_if_exist":{"vpc:region":"sh"}}}]}',
    '{"version":"2.0","statement":[{"effect":"allow","action":["cvm:RebootInstances"],"resource":"*","condition":{"for_any_value:string_equal":{"qcs:resource_tag":["dept&rd"]}}}]}',
    '{"version":"2.0","statement":[{"effect":"deny","action":["cvm:Describe*"],"resource":["qcs::cvm:ap-guangzhou:uin/100000000001:instance/ins-abcdefgh"],"condition":{"date_less_than":{"qcs:current_time":"2026-06-01T00:01:00Z"},"numeric_equal":{"qcs:mfa":1}}}]}',
]
POLICY_RAM = [
    '{"Version":"1","Statement":[{"Effect":"Allow","Action":["ecs:DescribeInstances","ecs:Start*"],"Resource":["acs:ecs:cn-hangzhou:1234567890123456:instance/i-bp1abc","acs:ecs:*:*:keypair/*"],"Condition":{"StringEquals":{"ecs:tag/env":["dev"]},"IpAddress":{"acs:SourceIp":["10.0.0.0/8"]}}}]}',
    '{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"Bool":{"acs:MFAPresent":"true"}}}]}',
    '{"Version":"1","Statement":[{"Effect":"Allow","NotAction":["ram:*"],"Resource":"*","Condition":{"DateLessThan":{"acs:CurrentTime":"2030-01-01T00:00:00+08:00"},"NotIpAddress":{"acs:SourceIp":"192.0.2.0/24"},"StringLike":{"acs:RequestTag/owner":"b*"}}},{"Effect":"Deny","Action":"ecs:Delete*","Resource":"*"}]}',
]
ACCESS_RULES = [
    ("/v2.1/servers/{server_id}", "/v2.1/servers/4f1c0e6b-2f3a-4b5c-9d8e-7f6a5b4c3d2e"),
    ("/v2.1/servers/*/action", "/v2.1/servers/abc/action"),
    ("/v2/images/**", "/v2/images/x/file"),
    ("/v3/users/{user_id}/application_credentials", "/v3/users/u1/application_credentials"),
    ("**", "/anything/at/all"),
    ("/v2.1/servers", "/v2.1/servers/"),
]

POLICY_OSLO = [
    '{"os_compute_api:servers:reboot": "rule:project_reader_or_admin"}',
    '{"context_is_admin": "role:admin or (role:reader and not user_id:%(user_id)s)", "os_compute_api:servers:show": "is_admin:True or project_id:%(project_id)s"}',
    '{"custom": "@", "other": "!", "x": "rule:custom and (role:member or rule:other)"}',
]


def main():
    # Tencent API: mode 0 JSON, 1 GET, 2 form, 3 legacy GET, 4 legacy POST.
    for i, (action, body) in enumerate(TENCENT):
        flat = flatten("", body, [])
        q = urllib.parse.urlencode(flat)
        put("tencent_api", f"{i:02}-json", bytes([0]) + f"{action}\n{json.dumps(body)}".encode())
        put("tencent_api", f"{i:02}-get", bytes([1]) + f"{action}\n{q}".encode())
        put("tencent_api", f"{i:02}-form", bytes([2]) + f"{action}\n{q}".encode())
        put("tencent_api", f"{i:02}-legacy", bytes([3 + (i % 2)]) + f"{action}\n{q}".encode())
        put("tencent_wire", f"{i:02}", q)
    # Alibaba API: mode bit 0 = POST, bit 7 = HMAC-SHA256.
    for i, (action, params) in enumerate(ALIYUN):
        q = urllib.parse.urlencode(list(params.items()) + ([("Format", "XML")] if i % 3 == 0 else []))
        put("aliyun_api", f"{i:02}", bytes([i % 2 | (0x80 if i % 4 == 0 else 0)]) + f"{action}\n{q}".encode())
        put("aliyun_params", f"{i:02}", q)
    # OpenStack: mode = prefix index | 4 (JSON content type).
    for i, (p, m, path, body) in enumerate(OPENSTACK):
        b = json.dumps(body) if body is not None else ""
        hdr = "x-openstack-nova-api-version: 2.79\n" if p == 1 and i % 2 else ""
        put("openstack_api", f"{i:02}", bytes([p | 4]) + f"{m}\n{path}\n{hdr}\n{b}".encode())
    # Admin API.
    admin = [
        ("GET", "/instances/ins-aaaaaaaa", ""), ("GET", "/instances/x/guest", ""),
        ("POST", "/instances/x/check-password", '{"password":"p"}'),
        ("POST", "/instances/x/restrict", '{"restriction":"expired"}'),
        ("POST", "/instances/x/faults", '{"fail_next":"start"}'),
        ("POST", "/instances/x/attributes", '{"application_role":"r"}'),
        ("POST", "/instances/x/live-migrate", ""), ("POST", "/faults", '{"capacity":0}'),
        ("POST", "/kms-keys/k1", '{"state":"disabled"}'),
        ("POST", "/keystone-users", '{"name":"u","password":"Passw0rd!"}'),
        ("GET", "/operations?limit=10", ""), ("GET", "/operations/by-request/r", ""),
    ]
    for i, (m, path, body) in enumerate(admin):
        put("admin_api", f"{i:02}", bytes([3 if i % 4 else 2]) + f"{m}\n{path}\n\n{body}".encode())
    # Web console: mode bit 0 = a real session (and its CSRF token), bit 1 = a form body.
    console = [
        (1, "GET", "/fleet?q=web&state=running&sort=name&page=2", ""),
        (1, "GET", "/instances/00000000-0000-4000-8000-000000000001", ""),
        (3, "POST", "/instances", "name=a&image=img-ubt22x64&instance_type=S5.MEDIUM4&zone=local-a&password=Passw0rd%21"),
        (3, "POST", "/instances/00000000-0000-4000-8000-000000000001/reboot", "reboot_type=HARD"),
        (3, "POST", "/keypairs", "name=k1&public_key=ssh-ed25519+AAAA"),
        (1, "GET", "/keypairs/skey-1/delete", ""), (1, "GET", "/operations", ""), (1, "GET", "/health", ""),
        (2, "POST", "/login", "method=keystone&user=admin&password=x&project=admin&domain=Default"),
        (2, "POST", "/login", "method=access_key&key_id=fuzzkey&key_secret=nope"),
        (0, "GET", "/fleet\ncookie: nubis_console=AAAA", ""), (0, "GET", "/assets/console.css", ""),
    ]
    for i, (mode, m, path, body) in enumerate(console):
        put("console", f"{i:02}", bytes([mode]) + f"{m}\n{path}\n\n{body}".encode())
    # Router: whole requests, as the SDKs send them but unauthenticated or wrongly signed.
    ts = "1764547200"
    router = [
        f"POST\n/\nhost: {HOST}\ncontent-type: application/json\nx-tc-action: DescribeInstances\nx-tc-version: 2017-03-12\nx-tc-timestamp: {ts}\nx-tc-region: ap-guangzhou\nauthorization: TC3-HMAC-SHA256 Credential=AKIDx/2025-12-01/cvm/tc3_request, SignedHeaders=content-type;host, Signature=00\n\n{{\"Limit\":1}}",
        "GET\n/?Action=DescribeZones&Version=2017-03-12&Region=ap-guangzhou&SecretId=x&Signature=x&Timestamp=1&Nonce=1&a.b.c=1\nhost: 127.0.0.1\n\n",
        "GET\n/?Action=DescribeInstances&Version=2014-05-26&RegionId=cn-hangzhou&AccessKeyId=x&Signature=x&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=n&Timestamp=2025-12-01T00:00:00Z&Format=XML\n\n",
        "POST\n/\ncontent-type: application/x-www-form-urlencoded\n\nAction=DescribeRegions&Version=2014-05-26&AccessKeyId=x&Signature=x",
        "POST\n/?Action=DescribeInstances&Version=2014-05-26\nauthorization: ACS3-HMAC-SHA256 Credential=x,SignedHeaders=host;x-acs-action,Signature=00\nx-acs-action: DescribeInstances\nx-acs-version: 2014-05-26\nx-acs-date: 2025-12-01T00:00:00Z\nx-acs-signature-nonce: n\nx-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\n",
        "POST\n/identity/v3/auth/tokens\ncontent-type: application/json\n\n{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"name\":\"Default\"},\"password\":\"x\"}}}}}",
        "GET\n/compute/v2.1/servers/detail\nx-auth-token: gAAAAA\nx-openstack-nova-api-version: 2.96\n\n",
        "GET\n/image/v2/images\nx-auth-token: x\n\n",
        "GET\n/healthz\n\n", "GET\n/metrics\n\n",
        "POST\n/admin/v1/keystone-users\nauthorization: Basic " + base64.b64encode(b"fuzzkey:bad").decode() + "\ncontent-type: application/json\n\n{\"name\":\"u\"}",
        "DELETE\n/nope\n\n",
    ]
    for i, r in enumerate(router):
        put("router", f"{i:02}", r)
    # Signature parsers.
    tc3 = [
        f"authorization: TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c\ncontent-type: application/json; charset=utf-8\nhost: cvm.tencentcloudapi.com\nx-tc-timestamp: 1551113065\nx-tc-action: DescribeInstances\n\n\n{{\"Limit\": 1, \"Filters\": [{{\"Values\": [\"\\u672a\\u547d\\u540d\"], \"Name\": \"instance-name\"}}]}}",
        "host: cvm.tencentcloudapi.com\n\nAction=DescribeInstances&InstanceIds.0=ins-09dx96dg&Limit=20&Nonce=11886&Offset=0&Region=ap-guangzhou&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE&Timestamp=1465185768&Version=2017-03-12&Signature=EliP9YW3pW28FpsEdkXt%2F%2BWcGeI%3D\n",
        "host: cvm.tencentcloudapi.com\n\n\nAction=DescribeInstances&Nonce=1&SecretId=AKIDx&Timestamp=1&SignatureMethod=HmacSHA256&Signature=abc",
    ]
    for i, s in enumerate(tc3):
        put("auth_tencent", f"{i:02}", s)
    body = b""
    sha = hashlib.sha256(body).hexdigest()
    ali = [
        "\nAccessKeyId=testid&Action=DescribeInstances&Format=JSON&InstanceIds=%5B%22i-bp1abc%22%2C%20%22i-bp2def%22%5D&PageSize=10&RegionId=cn-hangzhou&SignatureMethod=HMAC-SHA1&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureType=&SignatureVersion=1.0&Timestamp=2024-01-01T12%3A00%3A00Z&Version=2014-05-26&Signature=y5921f3wRJKuXAIHp5%2F3%2B5zhzxk%3D\n",
        f"authorization: ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0\nhost: ecs.cn-hangzhou.aliyuncs.com\nx-acs-action: DescribeInstances\nx-acs-version: 2014-05-26\nx-acs-date: 2024-01-01T12:00:00Z\nx-acs-signature-nonce: 3ee8c1b8\nx-acs-content-sha256: {sha}\n\nRegionId=cn-hangzhou&InstanceIds=%5B%22i-a%22%5D\n",
        "\n\nAccessKeyId=testid&Action=RunInstances&SignatureMethod=HMAC-SHA256&SignatureVersion=1.0&SignatureNonce=n&Timestamp=2024-01-01T12:00:00%2B08:00&Signature=abc",
    ]
    for i, s in enumerate(ali):
        put("auth_aliyun", f"{i:02}", s)
    # Policies: the clouds' documentation examples (CAM, RAM) and oslo policy files / rules.
    for i, doc in enumerate(POLICY_CAM):
        put("policy_cam", f"{i:02}", doc)
    for i, doc in enumerate(POLICY_RAM):
        put("policy_ram", f"{i:02}", doc)
    for i, doc in enumerate(POLICY_OSLO):
        put("policy_oslo", f"{i:02}", doc)
    # Access-rule path templates and request paths (template NUL path).
    for i, (template, path) in enumerate(ACCESS_RULES):
        put("access_rule_path", f"{i:02}", f"{template}\0{path}")
    # Render: arbitrary bytes (Unstructured); some printable, some with control chars and markup.
    put("render", "00", b"web-1\x00host\x00tag\x00<&>\"'\x01\x1b]\x7f" * 8)
    put("render", "01", "名前\u202e\ufeff\U0001F600\n\r\t".encode() * 6)
    put("render", "02", bytes(range(256)))


main()


def dicts():
    out = os.path.join(os.path.dirname(HERE), "dict")
    os.makedirs(out, exist_ok=True)

    def esc(t):
        return '"' + "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "\\x%02x" % ord(c) for c in t) + '"'

    def write(name, toks):
        seen = []
        for t in toks:
            if t and t not in seen:
                seen.append(t)
        with open(os.path.join(out, name + ".dict"), "w") as f:
            f.write("".join(esc(t) + "\n" for t in seen))

    common = ["=", "&", ".", ".0", ".1", ".1000", "%", "%00", "%2E", "+", "\n", ": ", "[", "]", "{", "}",
              '"', ",", "true", "false", "null", "-1", "0", "99999999999999999999", "1e400", "\\u0000"]
    tencent = common + [a for a, _ in TENCENT] + sorted({k.split(".")[0] for _, b in TENCENT for k, _ in flatten("", b, [])}) + [
        "TC3-HMAC-SHA256", "Credential=", "SignedHeaders=", "Signature=", "/cvm/tc3_request", "content-type;host",
        "authorization", "x-tc-timestamp", "x-tc-action", "x-tc-version", "x-tc-region", "Action", "Version",
        "2017-03-12", "Region", "SecretId", "Timestamp", "Nonce", "SignatureMethod", "HmacSHA1", "HmacSHA256",
        "Filters", "Name", "Values", "Offset", "Limit", "ap-guangzhou", "ap-guangzhou-3", "img-tos31x64", "ins-", "skey-"]
    aliyun = common + [a for a, _ in ALIYUN] + sorted({k for _, p in ALIYUN for k in p}) + [
        "ACS3-HMAC-SHA256", "Credential=", "SignedHeaders=", "Signature=", "x-acs-date", "x-acs-signature-nonce",
        "x-acs-content-sha256", "x-acs-action", "x-acs-version", "AccessKeyId", "SignatureMethod", "HMAC-SHA1",
        "HMAC-SHA256", "SignatureVersion", "1.0", "SignatureNonce", "Timestamp", "2014-05-26", "Format", "XML",
        "JSON", "RegionId", "cn-hangzhou", "2024-01-01T12:00:00Z", "+08:00", ".999999999Z", "InstanceId.1",
        "DataDisk.1.Size", "Tag.1.Key", "Tag.1.Value", '["i-a"]']
    openstack = common + ["GET\n", "POST\n", "PUT\n", "DELETE\n", "HEAD\n", "PATCH\n", "/auth/tokens", "/servers",
        "/servers/detail", "/action", "/flavors", "/os-keypairs", "/os-availability-zone", "/limits", "/images",
        "/os-extra_specs", "x-auth-token: ", "x-subject-token: ", "x-openstack-nova-api-version: ",
        "openstack-api-version: compute ", "2.1", "2.96", "latest", "server", "name", "imageRef", "flavorRef",
        "min_count", "max_count", "adminPass", "key_name", "metadata", "networks", "auto", "none", "reboot",
        "HARD", "os-start", "os-stop", "rescue", "unrescue", "changePassword", "lock", "unlock", "keypair",
        "public_key", "auth", "identity", "methods", "password", "token", "scope", "project", "system",
        "domain", "Default", "user", "limit=", "marker=", "?", "personality", "path", "contents",
        "user_data", "rebuild", "2.56", "2.57"]
    admin = common + ["GET\n", "POST\n", "/instances/", "/guest", "/check-password", "/restrict", "/faults",
        "/attributes", "/live-migrate", "/kms-keys/", "/keystone-users", "/operations", "/by-request/",
        "authorization: Basic ", "content-type: application/json", "password", "name", "restriction"]
    write("tencent", tencent)
    write("aliyun", aliyun)
    write("openstack", openstack)
    write("admin", admin)
    write("policy", common + ["version", "statement", "effect", "action", "resource", "condition", "allow", "deny",
        "2.0", "Version", "Statement", "Effect", "Action", "NotAction", "Resource", "Condition", "Allow", "Deny",
        "qcs:ip", "qcs:current_time", "qcs:mfa", "qcs:resource_tag", "qcs:", "acs:SourceIp", "acs:CurrentTime",
        "acs:MFAPresent", "acs:ResourceTag/", "acs:", "ecs:tag/", "string_equal", "_if_exist", "for_any_value:",
        "for_all_value:", "ip_equal", "date_less_than", "numeric_equal", "bool_equal", "null_equal",
        "StringEquals", "StringLike", "IpAddress", "NotIpAddress", "DateLessThan", "Bool", "NumericLessThan",
        "10.0.0.0/8", "2026-01-01T00:00:00Z", "*", "?", "uin/", "instance/", "cvm:", "ecs:", "rule:", "role:",
        "is_admin:True", "project_id:%(project_id)s", "user_id:%(user_id)s", "%(", ")s", " and ", " or ",
        "not ", "(", ")", "@", "!", "context_is_admin", "os_compute_api:servers:reboot"])
    write("router", tencent + aliyun + openstack + admin + ["/healthz", "/metrics", "/admin/v1", "/identity", "/compute", "/image",
        "content-type: application/x-www-form-urlencoded", "host: "])


dicts()
