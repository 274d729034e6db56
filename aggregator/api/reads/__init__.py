"""Published statuses on their way out: the cached reader kept honest by NOTIFY, the hot read
served before the framework, the live stream's hub, and the API's view of a status."""
