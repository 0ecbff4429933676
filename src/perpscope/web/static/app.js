// Draws every chart div from its JSON figure with the locally served plotly.js.
(function () {
  var dark = {paper_bgcolor: "#0f1218", plot_bgcolor: "#0f1218", font: {color: "#dde3ea"},
              margin: {t: 40, r: 20, b: 40, l: 60}, legend: {orientation: "h"}};
  document.querySelectorAll("div.chart[data-figure]").forEach(function (div) {
    var fig = JSON.parse(div.getAttribute("data-figure"));
    var layout = Object.assign({}, dark, fig.layout || {});
    Plotly.newPlot(div, fig.data, layout, {responsive: true, displaylogo: false});
  });
})();
