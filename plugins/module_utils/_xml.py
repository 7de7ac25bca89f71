# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: parsing and serialising libvirt XML with lxml, safely and in one style."""

from __future__ import annotations

import os
import traceback

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError

LXML_IMPORT_ERROR = None
try:
    from lxml import etree
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    etree = None
    LXML_IMPORT_ERROR = traceback.format_exc()


class XMLInputError(UserError, ValueError):
    """XML given by the user (or returned by libvirt) could not be parsed."""


def _parser():
    # No entity expansion, no network access: XML can come from users' variables.
    return etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True,
                           remove_comments=False, huge_tree=False)


def parse_xml(text):
    """Parse an XML document (str or bytes) into an lxml element; raise XMLInputError on bad XML."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    try:
        return etree.fromstring(text, _parser())
    except etree.XMLSyntaxError as exc:
        raise XMLInputError(str(exc)) from exc


def to_string(element):
    """Serialise an element the way libvirt indents its own documents (two spaces)."""
    etree.indent(element, space="  ")
    return etree.tostring(element, encoding="unicode")


# libvirt's RelaxNG schemas, installed with the libvirt library (Debian libvirt0, RHEL libvirt-libs); a build
# from source under /usr/local has them there.
SCHEMA_DIRS = ("/usr/share/libvirt/schemas", "/usr/local/share/libvirt/schemas")
SCHEMA_DIR = next((d for d in SCHEMA_DIRS if os.path.isdir(d)), SCHEMA_DIRS[0])
_SCHEMAS = {}
# Schema files a check needed and this host does not have: the check was left to the daemon (its VALIDATE
# flags, _libvirt.define), and the task says so in a warning (schema_warnings). Never a silent pass.
UNCHECKED = set()


def schema_path(schema):
    """The path of a schema file (a name such as 'network.rng', or a path), or None when it is not installed."""
    path = schema if os.path.isabs(schema) else os.path.join(SCHEMA_DIR, schema)
    if os.path.exists(path):
        return path
    UNCHECKED.add(path)
    return None


def schema_warnings():
    """The warning for the schema checks this process could not make here (and forgets them)."""
    if not UNCHECKED:
        return []
    missing = ", ".join(sorted(UNCHECKED))
    UNCHECKED.clear()
    return ["libvirt's RelaxNG schemas are not installed on this host (%s): values and documents were not checked "
            "against them here; libvirt checked every definition it was given against its own schema "
            "(install the libvirt library's package, libvirt0 or libvirt-libs, to check before any change and in "
            "check mode)" % missing]


class SchemaError(UserError, ValueError):
    """A document the collection is about to write does not validate against libvirt's schema."""


def schema_error(xml, schema):
    """None when ``xml`` validates against libvirt's RelaxNG schema ``schema`` (a file name such as
    'network.rng', or a path); else the validation error. A schema that is not installed here is left to the
    daemon's own check, and recorded (schema_warnings)."""
    path = schema_path(schema)
    if path is None:
        return None
    if path not in _SCHEMAS:
        _SCHEMAS[path] = etree.RelaxNG(file=path)
    checker = _SCHEMAS[path]
    if checker.validate(parse_xml(xml)):
        return None
    return str(checker.error_log.last_error)


def plain_path(path):
    """An element path without positions ('/domain/devices/disk[2]/source' -> '/domain/devices/disk/source')."""
    return "/".join(step.split("[", 1)[0] for step in path.split("/"))


class InvalidPart:
    """A part of a document that fails libvirt's schema: the element's ``path`` ('/domain/os/loader',
    '/domain/devices/disk[2]/source'), the attribute (``attribute``) or the text (``text``) that alone makes it fail
    when one does, and a ``signature`` that is the same for the same invalid part of another version of the
    document (the path without positions, and the element as it is)."""

    def __init__(self, path, elem, attribute=None, text=False):
        self.path, self.attribute, self.text = path, attribute, text
        self.signature = (plain_path(path), attribute, etree.tostring(elem, method="c14n"))

    def describe(self):
        if self.attribute:
            return "%s/@%s" % (self.path, self.attribute)
        return "%s (its text)" % self.path if self.text else self.path

    def __repr__(self):
        return "InvalidPart(%s)" % self.describe()


def _error_path(checker):
    """The element the schema check's last error names (libxml2 names the top element whose content failed)."""
    entry = checker.error_log.last_error
    return None if entry is None else entry.path


def invalid_parts(xml, schema, limit=8):
    """The parts of a document (text) that fail libvirt's RelaxNG schema ``schema``, found by taking them out: libxml2
    names only the top element whose content failed ('/domain/devices'); the element under it whose removal clears
    that error (the deepest first) is the invalid part, and within it the attribute, or the text, whose removal
    makes it valid. Taken out in turn, until the document validates (at most ``limit`` parts). [] when it is valid,
    or when the schema is not installed here."""
    path = schema_path(schema)
    if path is None:
        return []
    if path not in _SCHEMAS:
        _SCHEMAS[path] = etree.RelaxNG(file=path)
    checker = _SCHEMAS[path]
    work = parse_xml(xml)
    tree = work.getroottree()
    found = []
    while not checker.validate(work) and len(found) < limit:
        where = _error_path(checker)
        scope = work.xpath(where)[0] if where and work.xpath(where) else work
        culprit = _culprit(checker, work, scope, where)
        part = _narrow(checker, work, culprit, tree.getpath(culprit), where)
        found.append(part)
        if culprit is work:
            break  # the root itself: nothing left to take out
        culprit.getparent().remove(culprit)
    return found


def _clears(checker, work, where):
    """Whether the document validates now, or its error is no longer in ``where``."""
    if checker.validate(work):
        return True
    now = _error_path(checker)
    return where is not None and now != where and not (now or "").startswith(where + "/")


def _culprit(checker, work, scope, where):
    """The deepest element under ``scope`` whose removal clears the error, else ``scope``."""
    for elem in _post_order(scope):
        parent = elem.getparent()
        index = parent.index(elem)
        parent.remove(elem)
        cleared = _clears(checker, work, where)
        parent.insert(index, elem)
        if cleared:
            return elem
    return scope


def _post_order(elem):
    for child in list(elem):
        if isinstance(child.tag, str):
            yield from _post_order(child)
            yield child


def _narrow(checker, work, elem, path, where):
    """The attribute (or the text) of ``elem`` whose removal alone clears the error, if one does."""
    for name in list(elem.attrib):
        value = elem.attrib.pop(name)
        cleared = _clears(checker, work, where)
        elem.set(name, value)
        if cleared:
            return InvalidPart(path, elem, attribute=name)
    if elem.text and len(elem) == 0:
        text, elem.text = elem.text, None
        cleared = _clears(checker, work, where)
        elem.text = text
        if cleared:
            return InvalidPart(path, elem, text=True)
    return InvalidPart(path, elem)


_RNG = "http://relaxng.org/ns/structure/1.0"
_VALUE_TYPES = {}  # schema file -> the data types of it that values are checked against
_VALUE_CHECKERS = {}  # schema file -> (types compiled in, the grammar)


def register_value_type(define, schema_file="domaincommon.rng"):
    """Declare (at import time, from a field table) that values are checked against ``define``."""
    _VALUE_TYPES.setdefault(schema_file, set()).add(define)


def _value_checker(schema_file):
    """One RelaxNG grammar per schema file, compiled once per process: its document is
    ``<DEFINE>text</DEFINE>`` for each registered data type, checked by libvirt's own definition."""
    types = frozenset(_VALUE_TYPES.get(schema_file, ()))
    compiled = _VALUE_CHECKERS.get(schema_file)
    if compiled is None or compiled[0] != types:
        path = os.path.join(SCHEMA_DIR, schema_file)
        has_start = etree.parse(path).getroot().find("{%s}start" % _RNG) is not None
        start = "<start><choice>%s</choice></start>" % "".join(
            '<element name="%s"><ref name="%s"/></element>' % (define, define) for define in sorted(types))
        grammar = ('<grammar xmlns="%s" datatypeLibrary="http://www.w3.org/2001/XMLSchema-datatypes">'
                   '<include href="%s">%s</include>%s</grammar>'
                   % (_RNG, path, start if has_start else "", "" if has_start else start))
        compiled = _VALUE_CHECKERS[schema_file] = (types, etree.RelaxNG(etree.fromstring(grammar)))
    return compiled[1]


def schema_value_error(text, define, schema_file="domaincommon.rng"):
    """None when ``text`` is a valid value of libvirt's schema data type ``define``; else the validation error.
    A schema that is not installed here is left to the daemon's check of the document, and recorded."""
    if schema_path(schema_file) is None:
        return None
    register_value_type(define, schema_file)
    checker = _value_checker(schema_file)
    node = etree.Element(define)
    node.text = text
    if checker.validate(node):
        return None
    return str(checker.error_log.last_error)


def validate_schema(xml, schema, what):
    """Raise SchemaError naming ``what`` and the schema when ``xml`` does not validate."""
    error = schema_error(xml, schema)
    if error:
        raise SchemaError("the resulting %s XML does not validate against libvirt's schema (%s): %s"
                          % (what, schema, error))
