/*
 * The admin console in the browser: a header with the navigation, and the page the location hash names
 * (`#/devices`, `#/devices/<id>`, `#/approvals`, `#/mappings`, `#/lots`, `#/import`, `#/activity`).
 */
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { DevicePage, DevicesPage } from "./devices.tsx";
import { ActivityPage, ApprovalsPage } from "./fleet.tsx";
import { ImportPage, LotsPage } from "./lots-import.tsx";
import { MappingsPage } from "./mappings.tsx";
import { href } from "./shared.tsx";

const NAV: [route: string, label: string][] = [
  ["devices", "Devices"],
  ["approvals", "Approve queue"],
  ["mappings", "Mappings"],
  ["lots", "Lots"],
  ["import", "Import"],
  ["activity", "Activity"],
];

/** The route of a location hash: its decoded segments (`devices` when none). */
export function routeOf(hash: string): string[] {
  const parts = hash
    .replace(/^#\/?/, "")
    .split("/")
    .filter(Boolean)
    .map((p) => decodeURIComponent(p));
  return parts.length > 0 ? parts : ["devices"];
}

function useRoute(): string[] {
  const [route, setRoute] = useState(routeOf(location.hash));
  useEffect(() => {
    const changed = () => setRoute(routeOf(location.hash));
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}

function Content({ route }: { route: string[] }) {
  const [page, id] = route;
  if (page === "devices" && id !== undefined) return <DevicePage deviceId={id} />;
  if (page === "approvals") return <ApprovalsPage />;
  if (page === "mappings") return <MappingsPage />;
  if (page === "lots") return <LotsPage />;
  if (page === "import") return <ImportPage />;
  if (page === "activity") return <ActivityPage />;
  return <DevicesPage />;
}

function App() {
  const route = useRoute();
  const main = useRef<HTMLElement>(null);
  const key = route.join("/");
  // a new page takes the focus, so keyboard and screen-reader users start at its content
  useEffect(() => {
    main.current?.focus();
  }, [key]);
  return (
    <>
      <button type="button" class="skip" onClick={() => main.current?.focus()}>
        Skip to content
      </button>
      <header>
        <span class="brand">jitr console</span>
        <nav aria-label="Console">
          <ul>
            {NAV.map(([name, label]) => (
              <li key={name}>
                <a href={href(name)} aria-current={route[0] === name ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      <main id="main" tabIndex={-1} ref={main}>
        <Content key={key} route={route} />
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
