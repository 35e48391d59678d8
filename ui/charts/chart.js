// DetLens' charts (ui/charts): a plotly chart kept for the life of its element and updated in place
// (Plotly.react) from each rerun's figure, drawn in Streamlit's look. A Streamlit v2 component:
// this module's default export runs at every render of the element, on the same parentElement.
"use strict";

// For tests and benches (tests/browser.py): renders drawn (or failed) so far, and draws under way.
window.detlensCharts = window.detlensCharts || {draws: 0, busy: 0};

// plotly.js is loaded once per browser page (a script element), however many charts it shows.
function plotly(url) {
  if (!window.detlensPlotly) {
    window.detlensPlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => {
        window.detlensPlotly = null;  // the next render tries again
        reject(new Error(`${url} could not be loaded`));
      };
      document.head.appendChild(script);
    });
  }
  return window.detlensPlotly;
}

// Streamlit's plotly template (streamlit/elements/lib/streamlit_plotly_theme.py) writes
// placeholder colours that Streamlit's own chart replaces with the theme's; the same here, from
// the theme's CSS variables, so that these charts look like st.plotly_chart's in any theme.
function themed(spec, element) {
  const style = getComputedStyle(element);
  const variable = (name) => style.getPropertyValue(name).trim();
  const list = (name) => variable(name).split(",").map((color) => color.trim());
  const categorical = list("--st-chart-categorical-colors");
  const sequential = list("--st-chart-sequential-colors");
  const diverging = list("--st-chart-diverging-colors");
  const text = variable("--st-text-color") || "#31333F";
  const faded = variable("--st-gray-color") || text;  // Streamlit's gray70: ticks, axis titles
  const grid = variable("--st-border-color-light") || "rgba(128, 128, 128, 0.25)";
  const background = variable("--st-background-color") || "#ffffff";
  const colors = {};
  categorical.forEach((color, i) => { colors[`#0000${String(i + 1).padStart(2, "0")}`] = color; });
  sequential.forEach((color, i) => { colors[`#0000${String(i + 11).padStart(2, "0")}`] = color; });
  diverging.forEach((color, i) => { colors[`#0000${String(i + 21).padStart(2, "0")}`] = color; });
  Object.assign(colors, {"#000032": variable("--st-green-color"), "#000033": variable("--st-red-color"),
                         "#000034": variable("--st-blue-color"), "#000035": grid, "#000036": faded,
                         "#000037": text, "#000038": background, "#000039": grid, "#000040": grid});
  const figure = JSON.parse(spec.replace(/#0000[0-4][0-9]/g, (color) => colors[color] || color));
  const font = variable("--st-font") || "sans-serif";
  const axis = (standoff) => ({
    gridcolor: grid, zerolinecolor: grid, tickcolor: grid, linecolor: grid, automargin: true,
    tickfont: {color: faded, size: 12}, title: {font: {color: faded, size: 14}, standoff},
  });
  const layout = figure.layout = figure.layout || {};
  const template = layout.template = layout.template || {};
  // Streamlit's template layout (CustomTheme.tsx): under the figure's own layout
  template.layout = Object.assign({
    font: {color: faded, family: font, size: 12},
    title: {font: {family: variable("--st-heading-font") || font, size: 16, color: text}, x: 0, xanchor: "left",
            pad: {l: 4}},
    legend: {font: {size: 12, color: text}, title: {font: {size: 12, color: faded}}},
    paper_bgcolor: background, plot_bgcolor: background,
    xaxis: Object.assign({showgrid: false, zeroline: false}, axis(20)), yaxis: axis(24),
    hoverlabel: {bgcolor: background, bordercolor: grid, font: {color: text, family: font, size: 12}},
    margin: {pad: 8, r: 0, l: 0},
  }, template.layout || {});
  if (layout.title) {  // bold titles, as Streamlit draws them
    const title = typeof layout.title === "string" ? {text: layout.title} : layout.title;
    if (title.text && !title.text.startsWith("<b>")) title.text = `<b>${title.text}</b>`;
    layout.title = title;
  }
  return figure;
}

// A point of a click, as st.plotly_chart's selection event gives it.
function point(p) {
  const out = {curve_number: p.curveNumber, point_number: p.pointNumber, point_index: p.pointIndex,
               x: p.x, y: p.y};
  if (p.z !== undefined) out.z = p.z;
  if (p.customdata !== undefined) out.customdata = p.customdata;
  return out;
}

// Four corners: the chart fullscreen, as st.plotly_chart's toolbar offers.
const FULLSCREEN = {
  name: "Fullscreen", title: "Fullscreen",
  icon: {width: 16, height: 16, path: "M0 0h6v2H2v4H0zM10 0h6v6h-2V2h-4zM0 10h2v4h4v2H0zM14 10h2v6h-6v-2h4z"},
  click: (chart) => document.fullscreenElement ? document.exitFullscreen() : chart.requestFullscreen(),
};

async function draw(chart, data, Plotly) {
  const figure = themed(data.spec, chart.parentElement || chart);
  const layout = figure.layout;
  layout.autosize = true;
  delete layout.width;
  layout.height = document.fullscreenElement === chart ? window.innerHeight : data.height;
  if (data.selectable) layout.clickmode = "event+select";
  const config = Object.assign({responsive: true, displaylogo: false}, data.config,
                               {modeBarButtonsToAdd: [FULLSCREEN]});
  await Plotly.react(chart, figure.data || [], layout, config);
}

// A chart first drawn off screen waits until it is scrolled near: a page of many charts shows its
// first ones sooner (plotly.js draws one at a time, ~30-60 ms each). Once drawn, it follows
// every render. (tests.browser.wait_until_idle: data-offscreen marks one waiting.)
function seen(chart) {
  return new Promise((resolve) => {
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) {
        observer.disconnect();
        resolve();
      }
    }, {rootMargin: "200px"});
    observer.observe(chart);
  });
}

// Renders can come faster than a figure draws (key presses on a slow machine): draw the latest.
async function drain(chart) {
  const state = chart.detlensState;
  if (state.drawing) return;
  state.drawing = true;
  if (state.drawnSpec === null) {
    chart.dataset.offscreen = "true";
    await seen(chart);
    delete chart.dataset.offscreen;
  }
  window.detlensCharts.busy += 1;
  while (state.pending) {
    const data = state.pending;
    state.pending = null;
    if (data.spec === state.drawnSpec) continue;
    try {
      const Plotly = await plotly(data.bundle);
      await draw(chart, data, Plotly);
      state.drawnSpec = data.spec;
      state.problem.hidden = true;
      if (!state.listening) {
        state.listening = true;
        // the latest render's setStateValue: the listeners outlive the render that added them
        chart.on("plotly_click", (event) => {
          if (state.selectable) state.setStateValue("selection", {points: event.points.map(point)});
        });
        const clear = () => { if (state.selectable) state.setStateValue("selection", {points: []}); };
        chart.on("plotly_deselect", clear);
        chart.on("plotly_doubleclick", clear);
      }
    } catch (error) {
      state.problem.textContent = `The chart could not be drawn: ${error}`;
      state.problem.hidden = false;
    }
    window.detlensCharts.draws += 1;
  }
  state.drawing = false;
  window.detlensCharts.busy -= 1;
}

export default function (component) {
  const {data, parentElement, setStateValue} = component;
  let chart = parentElement.querySelector(".detlens-chart");
  if (!chart) {
    chart = document.createElement("div");
    chart.className = "detlens-chart";
    const problem = document.createElement("div");
    problem.className = "detlens-chart-problem";
    problem.hidden = true;
    parentElement.append(chart, problem);
    chart.detlensState = {pending: null, drawing: false, drawnSpec: null, listening: false, problem};
    chart.addEventListener("fullscreenchange", () => {
      const Plotly = window.Plotly;
      if (Plotly && chart.data) {
        Plotly.relayout(chart, {height: document.fullscreenElement === chart ? window.innerHeight
                                                                               : chart.detlensState.height});
      }
    });
  }
  const state = chart.detlensState;
  chart.style.minHeight = `${data.height}px`;  // its place kept before it is drawn
  state.selectable = data.selectable;
  state.setStateValue = setStateValue;
  state.height = data.height;
  state.pending = data;
  drain(chart);
  // Called before each new render too: only a chart gone from the page (its page left) is purged,
  // so that plotly's window listeners (responsive resizing) let go of it.
  return () => setTimeout(() => { if (!chart.isConnected && window.Plotly) window.Plotly.purge(chart); }, 0);
}
