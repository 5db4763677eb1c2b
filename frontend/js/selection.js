// Runs selected for comparison, kept across pages (and reloads) in localStorage.

const KEY = "losslens.compare";

export function selected() {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(v) ? v.filter((x) => typeof x === "string") : [];
  } catch {
    return [];
  }
}

export function setSelected(ids) {
  localStorage.setItem(KEY, JSON.stringify([...new Set(ids)].slice(0, 20)));
  document.dispatchEvent(new CustomEvent("losslens:selection"));
}

export function toggle(id, on) {
  const now = new Set(selected());
  if (on ?? !now.has(id)) now.add(id);
  else now.delete(id);
  setSelected([...now]);
}

export function compareHref(ids) {
  return `#/compare?runs=${ids.map(encodeURIComponent).join(",")}`;
}
