"""Server-side SVG charts: no script, nothing loaded from the network."""

__all__ = ["throughput_svg"]

from markupsafe import Markup, escape

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 180, 48, 22, 10


def _nice(value):
    """A round axis maximum at or above `value`."""
    step = 1
    while step * 10 <= value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if value <= step * factor:
            return step * factor
    return value


def throughput_svg(buckets, title, per=1):
    """An SVG line chart of jobs completed (green) and failed (red).

    :param buckets: ``[(datetime, completed, failed)]``, oldest first.
    :param per: minutes per bucket: values are shown per minute.
    """
    points = [(when, completed / per, failed / per)
              for when, completed, failed in buckets]
    top = _nice(max([1] + [max(c, f) for _, c, f in points]))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    count = max(1, len(points) - 1)

    def x(index):
        return LEFT + plot_w * index / count

    def y(value):
        return TOP + plot_h * (1 - value / top)

    parts = ['<svg xmlns="http://www.w3.org/2000/svg" class="chart"'
             ' viewBox="0 0 %d %d" role="img" aria-label="%s">'
             % (WIDTH, HEIGHT, escape(title)),
             '<title>%s</title>' % escape(title)]
    for fraction in (0, 0.5, 1):
        value = top * fraction
        parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f"'
                     ' class="grid"/>' % (LEFT, WIDTH - 8, y(value),
                                          y(value)))
        parts.append('<text x="%d" y="%.1f" class="axis"'
                     ' text-anchor="end">%s</text>'
                     % (LEFT - 4, y(value) + 4, ("%g" % value)))
    for index, anchor in ((0, "start"), (len(points) // 2, "middle"),
                          (len(points) - 1, "end")):
        if 0 <= index < len(points):
            parts.append('<text x="%.1f" y="%d" class="axis"'
                         ' text-anchor="%s">%s</text>' % (
                             x(index), HEIGHT - 6, anchor,
                             points[index][0].strftime("%H:%M")))
    for series, css in ((1, "completed"), (2, "failed")):
        line = " ".join("%.1f,%.1f" % (x(index), y(point[series]))
                        for index, point in enumerate(points))
        parts.append('<polyline class="%s" points="%s"/>' % (css, line))
    parts.append("</svg>")
    return Markup("".join(parts))
