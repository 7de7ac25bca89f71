# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the field-mapping mechanism shared by every XML model in the collection (codecs: _codecs.py).

A :class:`Field` binds one spec key to one place in an XML element (an attribute, the text of a
child, or the presence of a child) through a :class:`Codec` that normalises values both ways.
Reconciling a field compares normalised values, never XML text, and writes only when they differ,
so an unchanged spec leaves the document byte for byte as libvirt wrote it.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import Codec, YesNo
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree


# ---- fields ----------------------------------------------------------------------------------------

TEXT = "text"
PRESENCE = "presence"


def find_path(elem, path):
    """The element at a simple slash path below ``elem`` ('' is ``elem`` itself), or None."""
    for step in filter(None, path.split("/")):
        elem = elem.find(step)
        if elem is None:
            return None
    return elem


def ensure_path(elem, path):
    """Like :func:`find_path`, creating missing elements along the way."""
    for step in filter(None, path.split("/")):
        child = elem.find(step)
        if child is None:
            child = etree.SubElement(elem, step)
        elem = child
    return elem


def prune_empty(elem, path):
    """Remove elements along ``path`` (deepest first) that were left with no attributes, text or children."""
    steps = list(filter(None, path.split("/")))
    while steps:
        node = find_path(elem, "/".join(steps))
        if node is None or len(node) or node.attrib or (node.text or "").strip():
            return
        node.getparent().remove(node)
        steps.pop()


class Field:
    """One spec key bound to one XML place.

    ``where`` is TEXT (the element's text), PRESENCE (a boolean: whether the element exists), or an
    attribute name. ``live`` names how a running guest can take a change of this field without a
    restart (None: only at the next boot). ``secret`` fields (passwords) are declared so here, once:
    their values never leave the module, old or new.
    """

    def __init__(self, key, path, where=TEXT, codec=None, live=None, fixed=None, secret=False, option=None):
        self.key = key
        self.path = path
        self.where = where
        self.codec = codec or (YesNo() if where == PRESENCE else Codec())
        self.live = live
        self.fixed = fixed or {}  # attributes written along with the value, e.g. unit='KiB'
        self.secret = secret  # the value never appears in a result, warning, error or diff
        self.option = option or {}  # more of the option's argument spec: default, required

    composite = False  # True: part of other options (a device's source), no argument spec entry of its own

    def argspec(self):
        """This field's entry in the module's argument spec (None: it has none of its own)."""
        if self.composite:
            return None
        spec = dict(self.codec.argspec(), **self.option)
        if self.secret:
            spec["no_log"] = True
        return spec

    def parse(self, value, option):
        if self.where == TEXT and isinstance(value, str):
            value = value.strip()  # as read() sees the element's text: otherwise it would differ on every run
        return self.codec.parse(value, option)

    def read(self, elem):
        node = find_path(elem, self.path)
        if self.where == PRESENCE:
            return node is not None
        if node is None:
            return None
        raw = node.text if self.where == TEXT else node.get(self.where)
        return self.codec.load(raw.strip() if self.where == TEXT and raw is not None else raw)

    def write(self, elem, value):
        if self.where == PRESENCE:
            node = find_path(elem, self.path)
            if value and node is None:
                ensure_path(elem, self.path)
            elif not value and node is not None:
                node.getparent().remove(node)
                prune_empty(elem, self.path.rpartition("/")[0])
            return
        node = ensure_path(elem, self.path)
        for name, fixed in self.fixed.items():
            node.set(name, fixed)
        if self.where == TEXT:
            node.text = self.codec.dump(value)
        else:
            node.set(self.where, self.codec.dump(value))


SECRET_SET, SECRET_CHANGED, SECRET_REMOVED = "<secret set>", "<secret changed>", "<secret removed>"


class Change:
    """One difference the reconcile found: where, what was there, what is wanted, and how it can apply.

    A ``secret`` change never shows its values: describe() says only that the secret changed.
    """

    def __init__(self, what, before, after, live=None, secret=False, field=None):
        self.what, self.before, self.after, self.live, self.secret = what, before, after, live, secret
        self.field = field  # the field that found it: its codec shows the values as a user writes them

    def show(self, value):
        """A value as the user wrote it (128MiB, not 131072; a list of names, not tuples)."""
        if value is None:
            return "(none)"
        if self.field is not None:
            shown = self.field.codec.show(value)
            return shown if shown is not None else value
        return value

    def __repr__(self):
        if self.secret:
            return "Change(%s: %s, live=%s)" % (self.what, self.describe_secret(), self.live)
        return "Change(%s: %r -> %r, live=%s)" % (self.what, self.before, self.after, self.live)

    def describe_secret(self):
        if self.before is None:
            return SECRET_SET
        return SECRET_REMOVED if self.after is None else SECRET_CHANGED

    def describe(self):
        if self.secret:
            return "%s: %s" % (self.what, self.describe_secret())
        return "%s: %s -> %s" % (self.what, self.show(self.before), self.show(self.after))


def reconcile_fields(elem, fields, wanted, label=""):
    """Write every declared (non-None) wanted value that differs from the element; return the Changes."""
    changes = []
    for field in fields:
        value = wanted.get(field.key)
        if value is None:
            continue
        current = field.read(elem)
        if current != value:
            field.write(elem, value)
            changes.append(Change(label + field.key, current, value, field.live, field.secret, field))
    return changes


def lookup_dotted(raw, dotted):
    """raw['cpu']['mode'] for 'cpu.mode' (None where a level is missing)."""
    for part in dotted.split("."):
        if not isinstance(raw, dict):
            return None
        raw = raw.get(part)
    return raw


def parse_fields(fields, raw, option_prefix=""):
    """The declared (non-None) values of a raw spec dict, normalised through a field table, by key.
    Bad input raises SpecError naming the option (``option_prefix`` + the field's key)."""
    result = {}
    for field in fields:
        if getattr(field, "spec_only", False):
            continue
        value = lookup_dotted(raw, field.key)
        if value is not None:
            result[field.key] = field.parse(value, option_prefix + field.key)
    return result


def read_fields(elem, fields):
    """The values an element has for a field table, as a user would write them (nested by dotted
    key), for reading a spec back. Secret fields are never read back; absent flags are left out."""
    return show_fields(fields, {field.key: field.read(elem) for field in fields
                                if not getattr(field, "spec_only", False)})


def _round_trips(field, value, shown):
    """Whether a value read from XML, as a user would write it (``shown``), is valid input that writes the same
    value back. One that is not (a choice the option does not offer: graphics of type sdl; a value out of its
    range) is left out of a read-back spec: an option left out leaves the XML as it is, so applying the read-back
    still changes nothing, and it never holds an option value the module would refuse."""
    try:
        return field.parse(shown, field.key) == value
    except (UserError, ValueError, TypeError):
        return False


def show_fields(fields, values):
    """Values read through a field table (``values``: key -> the field's read value) as a user would write them,
    nested by dotted key; secret fields and absent flags left out (read_fields is this over an element)."""
    spec = {}
    for field in fields:
        if field.secret or getattr(field, "spec_only", False) or field.composite or field.key not in values:
            continue
        value = values[field.key]
        if isinstance(field, ElementList):
            value = field.show(value) or None
        elif value is not None:
            shown = field.codec.show(value)
            value = shown if _round_trips(field, value, shown) else None
        if value is not None and not (value is False and field.where == PRESENCE):
            target = spec
            parts = field.key.split(".")
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = value
    return spec


class Option:
    """A spec key with no XML place of its own (a disk's ``pool`` and ``volume``, which make up its
    source; a NIC's ``network``): declared in the same table so that the argument spec comes from it."""

    spec_only = True

    def __init__(self, key, argspec):
        self.key = key
        self._argspec = argspec

    def argspec(self):
        return dict(self._argspec)


def argument_spec_of(fields):
    """The AnsibleModule argument spec of a field table: dotted keys become nested dict options."""
    spec = {}
    for field in fields:
        entry = field.argspec()
        if entry is None:
            continue
        target = spec
        parts = field.key.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {"type": "dict", "options": {}})["options"]
        target[parts[-1]] = entry
    return spec


class LiveKind:
    """How a running guest takes a change without a restart: the words ``applied_live`` shows (the
    same in check mode) and the libvirt call that applies it. Fields name their live kind."""

    def __init__(self, name, label, call):
        self.name, self.label, self.call = name, label, call

    def __repr__(self):
        return "LiveKind(%s)" % self.name


class ElementList(Field):
    """A list of same-tag children of one parent, each item a dict of attributes (and of child-text lists).

    Used for lists that live inside a document rather than as devices: boot order (``os/boot``), CPU
    features, NUMA cells, vCPU pins, a network's DHCP ranges and hosts, DNS hosts, forward interfaces.
    The whole list is one value: items are compared as tuples of canonical strings (in order, or as a
    set when ``ordered`` is false), and a change rewrites just these children.

    ``attrs`` is a sequence of (spec key, XML place, codec): the place is an attribute name, or
    ``<tag>`` for a list of child elements' texts (a DNS host's ``<hostname>`` elements).
    ``shorthand`` names the spec key a bare scalar item stands for (``features: [x2apic]``);
    ``defaults`` fill keys an item omits; ``fixed`` attributes are written on every item
    (``unit='KiB'``); ``index`` names an attribute numbered by position (NUMA cell ``id``);
    ``required`` keys every item needs; ``unique`` maps a key that no two items may share to the
    message that says so (``{other}`` is the other item's option); ``prune`` (default) removes the
    parent when the list empties it.
    """

    def __init__(self, key, parent, tag, attrs, ordered=True, shorthand=None, defaults=None, fixed=None,
                 index=None, required=(), unique=None, option=None, prune=True, identity=None):
        super().__init__(key, parent, tag, option=option)
        self.identity = identity  # an attribute naming an item: a changed item keeps its element (and its children)
        self.prune = prune  # remove the parent when the list becomes empty and nothing else is in it
        self.required, self.unique = required, unique or {}
        self.parent, self.tag, self.attrs = parent, tag, attrs
        self.ordered, self.shorthand = ordered, shorthand
        self.defaults, self.item_fixed, self.index = defaults or {}, fixed or {}, index
        self.codec = self

    @staticmethod
    def _children_tag(place):
        return place[1:-1] if place.startswith("<") else None

    def argspec(self):
        if self.composite:
            return None
        if self.shorthand is not None and len(self.attrs) == 1:  # a list of scalars: boot devices
            item = self.attrs[0][2].argspec()
            return dict({"type": "list", "elements": item.pop("type")}, **dict(item, **self.option))
        if self.shorthand is not None:
            return dict({"type": "list", "elements": "raw"}, **self.option)
        options = {}
        for key, place, codec in self.attrs:
            entry = codec.argspec()
            if self._children_tag(place):
                entry = {"type": "list", "elements": entry["type"]}
            if key in self.required:
                entry["required"] = True
            options[key] = entry
        return dict({"type": "list", "elements": "dict", "options": options}, **self.option)

    # codec side: the user's list -> canonical tuple
    def parse(self, value, option):
        if value is None:
            return None
        if not isinstance(value, (list, tuple)):
            raise SpecError(option, value, "expected a list")
        items, seen = [], {}
        for position, raw in enumerate(value):
            where = "%s[%d]" % (option, position)
            if not isinstance(raw, dict):
                if self.shorthand is None:
                    raise SpecError(where, raw, "expected a dict")
                raw = {self.shorthand: raw}
            raw = dict(self.defaults, **{k: v for k, v in raw.items() if v is not None})
            unknown = set(raw) - {a[0] for a in self.attrs}
            if unknown:
                accepted = ", ".join(a[0] for a in self.attrs)
                raise SpecError(where, raw, "unknown key(s) %s; accepted: %s" % (", ".join(sorted(unknown)), accepted))
            missing = [key for key in self.required if raw.get(key) in (None, "", [])]
            if missing:
                raise SpecError(where, raw, "expected %s" % " and ".join(self.required))
            item = []
            if self.index:
                item.append((self.index, str(position)))
            for spec_key, place, codec in self.attrs:
                if raw.get(spec_key) is None:
                    continue
                if self._children_tag(place):
                    texts = raw[spec_key] if isinstance(raw[spec_key], (list, tuple)) else [raw[spec_key]]
                    item.append((place, tuple(sorted({codec.dump(codec.parse(text, "%s.%s[%d]" % (where, spec_key, n)))
                                                      for n, text in enumerate(texts)}))))
                    continue
                dumped = codec.dump(codec.parse(raw[spec_key], "%s.%s" % (where, spec_key)))
                if spec_key in self.unique:
                    if (spec_key, dumped) in seen:
                        raise SpecError("%s.%s" % (where, spec_key), dumped, self.unique[spec_key].format(
                            other="%s[%d]" % (option, seen[(spec_key, dumped)])))
                    seen[(spec_key, dumped)] = position
                item.append((place, dumped))
            item.extend(sorted(self.item_fixed.items()))
            items.append(tuple(sorted(item)))
        return tuple(items) if self.ordered else tuple(sorted(items))

    def load(self, text):
        return text

    def dump(self, value):
        return value

    def _canonical(self, attr, raw):
        for _key, xml_attr, codec in self.attrs:
            if xml_attr == attr:
                loaded = codec.load(raw)
                return raw if loaded is None else codec.dump(loaded)
        return raw

    def item_of(self, child):
        """The canonical item of one child element (what the list compares)."""
        known = {a[1] for a in self.attrs} | set(self.item_fixed) | ({self.index} if self.index else set())
        item = [(k, self._canonical(k, v)) for k, v in child.attrib.items() if k in known]
        for _key, place, codec in self.attrs:
            tag = self._children_tag(place)
            if tag:
                item.append((place, tuple(sorted({codec.dump(codec.load(node.text.strip()))
                                                  for node in child.iterfind(tag) if node.text}))))
        return tuple(sorted(item))

    def element_of(self, item):
        """A new child element for a canonical item."""
        child = etree.Element(self.tag)
        for name, value in item:
            tag = self._children_tag(name)
            if tag:
                for text in value:
                    etree.SubElement(child, tag).text = text
            else:
                child.set(name, value)
        return child

    def _rewritten(self, child, item):
        """An item's old element with the list's attributes rewritten to ``item`` (the rest of it kept)."""
        for _key, place, _codec in self.attrs:
            if not self._children_tag(place):
                child.attrib.pop(place, None)
        for name, value in item:
            if not self._children_tag(name):
                child.set(name, value)
        return child

    def read(self, elem):
        parent = find_path(elem, self.parent)
        if parent is None:
            return ()
        items = [self.item_of(child) for child in parent.findall(self.tag)]
        return tuple(items) if self.ordered else tuple(sorted(items))

    def write(self, elem, value):
        """Rewrite the children to ``value``. An item that is already there keeps its element as it is
        (with attributes and children the list does not manage, such as a DHCP host's ``<lease>``)."""
        parent = ensure_path(elem, self.parent)
        old = parent.findall(self.tag)
        position = parent.index(old[0]) if old else len(parent)
        reusable = {}
        for child in old:
            reusable.setdefault(self.item_of(child), []).append(child)
            parent.remove(child)
        named = {child.get(self.identity): child for child in old} if self.identity else {}
        for offset, item in enumerate(value):
            kept = reusable.get(tuple(item))
            if kept:
                child = kept.pop(0)
            elif self.identity and dict(item).get(self.identity) in named:
                child = self._rewritten(named[dict(item)[self.identity]], item)
            else:
                child = self.element_of(item)
            parent.insert(position + offset, child)
        if not value and self.prune:
            prune_empty(elem, self.parent)

    def show(self, value):
        """The canonical value back as the user's list (for read-back); a lone shorthand key as a scalar."""
        by_place = {a[1]: (a[0], a[2]) for a in self.attrs}
        result = []
        for item in value:
            entry = {}
            for name, place_value in item:
                if name in by_place:
                    key, codec = by_place[name]
                    if self._children_tag(name):
                        entry[key] = [codec.show(codec.load(text)) for text in place_value]
                    else:
                        entry[key] = codec.show(codec.load(place_value))
            for key, default in self.defaults.items():
                if entry.get(key) == default:
                    del entry[key]
            ordered = {a[0]: entry[a[0]] for a in self.attrs if a[0] in entry}
            result.append(ordered[self.shorthand] if list(ordered) == [self.shorthand] else ordered)
        return result


class Toggle(Field):
    """A boolean: whether an element matching ``xpath`` exists. True adds ``template`` under ``parent``.

    For singletons the user switches on or off (TPM, RNG, guest agent channel, hugepages).
    """

    def __init__(self, key, xpath, parent, template, live=None):
        super().__init__(key, parent, PRESENCE, YesNo(), live=live)
        self.xpath, self.parent, self.template = xpath, parent, template

    def read(self, elem):
        return bool(elem.xpath(self.xpath))

    def write(self, elem, value):
        if value:
            ensure_path(elem, self.parent).append(etree.fromstring(self.template))
            return
        for node in elem.xpath(self.xpath):
            node.getparent().remove(node)
        prune_empty(elem, self.parent)
