"""Every code the command linter emits: what it means and the Container Service line behind it.

Citations are to NrgXnat/container-service v3.7.3 (commit 8590cb6c) under
``src/main/java/org/nrg/containers/`` unless another repository is named.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CITATIONS", "RULES", "Rule"]

_CMD = "model/command/auto/Command.java"
_RES = "services/impl/CommandResolutionServiceImpl.java"


@dataclass(frozen=True)
class Rule:
    """One linter rule: its meaning and the source line that establishes it."""

    text: str
    cites: str


_RULES: dict[str, Rule] = {
    # -- Jackson deserialisation of the POSTed JSON (HTTP 400) or of the image label -----
    "E001": Rule("a command is not a JSON object (or a file is unreadable / not JSON)",
                 "rest/CommandRestApi.java:119 (@RequestBody Command.CommandCreation)"),
    "E002": Rule("a field has a JSON type Jackson cannot coerce to the Java type",
                 f"{_CMD}:2062-2097 (CommandCreation creator), 821-835, 1007-1012, 1441-1447, "
                 "1502-1515, 1666-1683, 2131-2142"),
    "E003": Rule("null inside a list or map (ImmutableList/ImmutableMap.copyOf throws)",
                 f"{_CMD}:2100-2105, 1449-1452, 850, 1905"),
    "E004": Rule("command input or wrapper input without a name (AutoValue builder throws)",
                 f"{_CMD}:2324 (Input.name not @Nullable), 837, 1517, 1685"),
    "E005": Rule("secret without destination, or source/destination with a missing or "
                 "unknown 'type'",
                 "secrets/SecretSource.java (@JsonTypeInfo 'system-property'), "
                 "secrets/SecretDestination.java ('environment-variable'); "
                 f"{_CMD}:417-418 (destination().getClass())"),
    "E006": Rule("image label not readable as a JSON array of commands (not an array, or one "
                 "command Jackson refuses): the whole label is dropped",
                 "services/impl/CommandLabelServiceImpl.java:49-50, 64-66"),
    # -- Command.validate() ------------------------------------------------------------------
    "E101": Rule("command name blank", f"{_CMD}:371-373"),
    "E102": Rule("image blank (and no ?image= override)", f"{_CMD}:376-378, 321-326"),
    "E103": Rule("label import: image name has no tag (no :latest is added on this path)",
                 f"{_CMD}:68, 379-381; services/impl/CommandLabelServiceImpl.java:57-58"),
    "E104": Rule("type not docker, docker-setup or docker-wrapup",
                 f"{_CMD}:383-392; model/command/entity/CommandEntity.java:80-92"),
    "E105": Rule("visibility not public, private or protected",
                 f"{_CMD}:393-396; model/command/entity/CommandVisibility.java:13-15"),
    "E106": Rule("setup/wrapup command declares mounts, inputs, outputs, wrappers, "
                 "environment variables, ports or secrets", f"{_CMD}:639-665"),
    "E107": Rule("ulimit value empty or with more than one ':'", f"{_CMD}:407-413"),
    "E108": Rule("secret written to XNAT_USER, XNAT_PASS or XNAT_HOST",
                 f"{_CMD}:426-428; services/ContainerService.java:43"),
    "E109": Rule("a secret and an environment variable have one name", f"{_CMD}:429-431"),
    "E110": Rule("mount name or path blank", f"{_CMD}:796-806, 786"),
    "E111": Rule("mount name repeated", f"{_CMD}:439-443"),
    "E112": Rule("command input name blank or not [A-Za-z0-9_-]", f"{_CMD}:67, 927-933"),
    "E113": Rule("command input name repeated", f"{_CMD}:457-461"),
    "E114": Rule("multiple-delimiter not quoted-space, space, comma or flag",
                 f"{_CMD}:934-939; model/command/entity/CommandInputEntity.java:330-334"),
    "E115": Rule("select type without select-values", f"{_CMD}:941-945"),
    "E116": Rule("select-values on a type that is not select-one/select-many",
                 f"{_CMD}:946-948"),
    "E117": Rule("default-value not in select-values (\"\" included)", f"{_CMD}:949-967"),
    "E118": Rule("select-many without default-value: validation throws (HTTP 500)",
                 f"{_CMD}:951-956 (ObjectMapper.readValue(null) is not an IOException)"),
    "E119": Rule("output name blank or not [A-Za-z0-9_-]", f"{_CMD}:1042-1051"),
    "E120": Rule("output mount blank", f"{_CMD}:1045-1047"),
    "E121": Rule("output name repeated", f"{_CMD}:474-478"),
    "E122": Rule("output mount not declared in mounts", f"{_CMD}:480-483"),
    "E123": Rule("wrapper name blank", f"{_CMD}:1375-1377"),
    "E124": Rule("wrapper name repeated", f"{_CMD}:497-501"),
    "E125": Rule("wrapper input name blank or not [A-Za-z0-9_-]", f"{_CMD}:1468-1487"),
    "E126": Rule("wrapper input type unknown (names are case-sensitive)",
                 f"{_CMD}:1472-1476; model/command/entity/CommandWrapperInputType.java:19-34"),
    "E127": Rule("via-setup-command on an input that feeds no mount", f"{_CMD}:1478-1481"),
    "E128": Rule("wrapper input name repeated (external and derived together)",
                 f"{_CMD}:511-515, 539-543"),
    "E129": Rule("wrapper input feeds a select-type command input",
                 f"{_CMD}:517-526, 554-563"),
    "E130": Rule("derived input without derived-from-wrapper-input", f"{_CMD}:1773-1775"),
    "E131": Rule("derived input derived from itself", f"{_CMD}:545-547"),
    "E132": Rule("derived input's parent is not an external or earlier derived input",
                 f"{_CMD}:548-552"),
    "E133": Rule("multiple: true derived input feeds a mount", f"{_CMD}:1777-1781"),
    "E134": Rule("multiple: true derived input feeds no command input", f"{_CMD}:1782-1785"),
    "E135": Rule("output handler name blank or not [A-Za-z0-9_-]",
                 f"{_CMD}:1964-1966, 1983-1986"),
    "E136": Rule("output handler accepts-command-output blank or not a command output",
                 f"{_CMD}:1969-1971, 580-585"),
    "E137": Rule("as-a-child-of blank, or not a wrapper input or an earlier handler",
                 f"{_CMD}:1972-1974, 587-593, 2146"),
    "E138": Rule("as-a-child-of a multiple: true input", f"{_CMD}:595-598"),
    "E139": Rule("as-a-child-of a derived input whose property is not uri", f"{_CMD}:600-609"),
    "E140": Rule("output handler name repeated", f"{_CMD}:611-615"),
    "E141": Rule("output handler type not Resource, Assessor or Scan (case-sensitive)",
                 f"{_CMD}:1975-1978; "
                 "model/command/entity/CommandWrapperOutputEntity.java:227-230"),
    "E142": Rule("Resource handler without label", f"{_CMD}:1980-1982"),
    "E143": Rule("command output not handled by a wrapper", f"{_CMD}:622-628"),
    "E144": Rule("(name, image, version) repeated",
                 "services/impl/HibernateCommandEntityService.java:48-56; "
                 "model/command/entity/CommandEntity.java:38-39"),
    "E145": Rule("a value longer than its varchar(255) column: saving fails (HTTP 500)",
                 "model/command/entity/*Entity.java (String columns without "
                 "columnDefinition=TEXT, Hibernate default length 255; e.g. "
                 "CommandWrapperDerivedInputEntity.getMatcher)"),
    # -- accepted, but ignored or broken at launch ---------------------------------------------
    "W101": Rule("unknown key: Jackson ignores it (Spring's Jackson2ObjectMapperBuilder "
                 "disables FAIL_ON_UNKNOWN_PROPERTIES)",
                 "NrgXnat/xnat src/main/java/org/nrg/framework/configuration/"
                 "SerializerConfig.java (objectMapperBuilder), used by NrgXnat/xnat-web "
                 "configuration/WebConfig.java; CS src/test/.../config/ObjectMapperConfig.java"),
    "W102": Rule("'ipc-mode' is ignored on POST and label import: CommandCreation reads 'ipcMode'",
                 f"{_CMD}:2088"),
    "W103": Rule("image without a tag: XNAT stores it as IMAGE:latest", f"{_CMD}:278, 329-335"),
    "W104": Rule("image without a registry host: Swarm/Kubernetes nodes pull it from Docker Hub",
                 "api/DockerControlApi.java:601, 719; api/KubernetesClientImpl.java:458 "
                 "(the image name goes to the backend as is)"),
    "W105": Rule("gpus is stored but no backend applies it",
                 f"{_RES}:530 (copied to the container, never read by api/)"),
    "W106": Rule("missing reserve-memory, limit-memory or limit-cpu (schedulers need them)",
                 f"{_CMD}:93-95 (optional)"),
    "W107": Rule("no version: duplicates cannot be detected, changes cannot be told apart",
                 "model/command/entity/CommandEntity.java:38-39 (NULL never equals NULL)"),
    "W108": Rule("shell syntax in command-line without override-entrypoint (no shell runs it)",
                 "api/DockerControlApi.java:606-608, 728-732 (ShellSplitter.shellSplit "
                 "unless override-entrypoint)"),
    "W109": Rule("unknown command input type: XNAT stores it as string",
                 "model/command/entity/CommandInputEntity.java:61-83"),
    "W110": Rule("output 'glob' is ignored: everything under 'path' is uploaded",
                 "services/impl/ContainerFinalizeServiceImpl.java:450-452, 588-592"),
    "W111": Rule("replacement key in command-line that no input defines", f"{_RES}:2388-2399"),
    "W112": Rule("wrapper-input replacement key in command-line: only command-input keys are "
                 "substituted there", f"{_RES}:1680-1691, 2395"),
    "W113": Rule("command input whose replacement key never appears", f"{_RES}:2388-2426"),
    "W114": Rule("wrapper without contexts (offered in no launch menu)",
                 "services/impl/CommandServiceImpl.java:450-454"),
    "W115": Rule("wrapper without exactly one external input (none: site-wide only; several: "
                 "only the first is set from the launch context)",
                 "services/impl/CommandServiceImpl.java:456-466"),
    "W116": Rule("value containing ;, &&, ||, ` or ( (refused at launch)",
                 f"services/CommandResolutionService.java:14; {_RES}:652-665"),
    "W117": Rule("derived input can match several objects of its parent: a bulk or REST launch "
                 "fails where more than one matches", f"{_RES}:1719-1732"),
    "W118": Rule("matcher cannot be parsed as a JSONPath filter", f"{_RES}:875, 1923-1928"),
    "W119": Rule("derivation XNAT cannot make (parent type cannot give this type)",
                 f"{_RES}:901-1427"),
    "W120": Rule("derived number, boolean, Config or file input: CS never resolves a value",
                 f"{_RES}:917-924, 1419-1427"),
    "W121": Rule("mount path not absolute, or output path absolute", f"{_RES}:2582-2720"),
    "W122": Rule("output written to a mount that an input feeds (read-only archive directory, "
                 "or a writable copy whose input files get uploaded too)",
                 f"{_RES}:2582-2650, 2733-2757 (writable: copied to a build directory)"),
    "W123": Rule("reserved environment variable name in environment-variables: the launch fails",
                 "services/impl/ContainerServiceImpl.java:816-828; "
                 "model/container/auto/Container.java:688-697 (ImmutableMap duplicate key)"),
    "W124": Rule("wrapper input feeds a command input that does not exist (CS never checks)",
                 f"{_CMD}:517-518, 554-555"),
    "W125": Rule("wrapper input feeds a mount that does not exist (CS never checks)",
                 f"{_CMD}:1459-1460 (not validated)"),
    "W126": Rule("handler child of another handler: only a Resource under an Assessor or Scan "
                 "uploads", f"{_RES}:2299-2320"),
    "W127": Rule("secret without a source: resolving it at launch fails", f"{_RES}:3052-3062"),
    "W129": Rule("no image: POST /xapi/commands needs ?image=NAME (register --image); "
                 "a label import takes the image's own name",
                 f"{_CMD}:321-326, 376-378; services/impl/CommandLabelServiceImpl.java:57-58"),
    "W130": Rule("single quotes or # comments: XNAT's ObjectMapper reads them, strict JSON "
                 "tools do not",
                 "NrgXnat/xnat src/main/java/org/nrg/framework/configuration/"
                 "SerializerConfig.java (objectMapperBuilder: ALLOW_SINGLE_QUOTES, "
                 "ALLOW_YAML_COMMENTS)"),
    "W131": Rule("secret from a system property: every launch fails until the XNAT "
                 "administrator sets it (-DNAME=VALUE in XNAT's JAVA_OPTS, then a restart)",
                 "secrets/SystemPropertySecretSource.java:72; secrets/ResolvedSecret.java:62; "
                 f"{_RES}:3052-3062"),
    "W128": Rule("label import: a refused command is dropped with a log line, HTTP 200",
                 "services/impl/CommandServiceImpl.java:130-143; "
                 "services/impl/CommandLabelServiceImpl.java:64-66"),
}

#: Code -> one-line meaning (the ``--rules`` listing).
RULES: dict[str, str] = {code: rule.text for code, rule in _RULES.items()}
#: Code -> the Container Service source that establishes the rule.
CITATIONS: dict[str, str] = {code: rule.cites for code, rule in _RULES.items()}
